using System.CommandLine;
using System.CommandLine.Parsing;
using System.Text.RegularExpressions;

namespace LocalDiffusion.Cli;

/// <summary>
/// System.CommandLine's parse errors in the CLI's own words, one line each, naming the flag: .NET type names
/// ("System.Nullable`1[System.Int64]") become what to type, a value outside an option's choices names the option, and a
/// stray word says it was not expected.
/// </summary>
internal static partial class ParseErrors
{
    [GeneratedRegex(@"^Cannot parse argument '(?<value>.*)' for option '(?<option>[^']+)' as expected type '(?<type>[^']+)'\.", RegexOptions.Singleline)]
    private static partial Regex TypeMismatch();

    [GeneratedRegex(@"^Argument '(?<value>.*)' not recognized\. Must be one of:(?<choices>.*)$", RegexOptions.Singleline)]
    private static partial Regex NotAChoice();

    [GeneratedRegex(@"^'(?<value>.*)' was not matched\.", RegexOptions.Singleline)]
    private static partial Regex NotMatched();

    [GeneratedRegex(@"^Unrecognized command or argument '(?<value>.*)'\.$", RegexOptions.Singleline)]
    private static partial Regex Unrecognized();

    [GeneratedRegex(@"^Option '(?<option>[^']+)' is required\.$")]
    private static partial Regex Required();

    public static IEnumerable<string> Describe(ParseResult parse)
    {
        var command = string.Join(' ', ["localdiffusion", .. Path(parse.CommandResult)]);
        foreach (var error in parse.Errors)
        {
            var message = error.Message;
            if (TypeMismatch().Match(message) is { Success: true } t)
                yield return $"error: {t.Groups["option"].Value} takes {Kind(t.Groups["type"].Value)}; got '{t.Groups["value"].Value}'.";
            else if (NotAChoice().Match(message) is { Success: true } c)
                yield return $"error: {OptionOf(error.SymbolResult) ?? "the option"} takes one of {string.Join(", ", c.Groups["choices"].Value.Split(['\n', '\t', '\r', '\''], StringSplitOptions.RemoveEmptyEntries))}; got '{c.Groups["value"].Value}'.";
            else if (NotMatched().Match(message) is { Success: true } m)
                yield return $"error: unexpected argument '{m.Groups["value"].Value}': values follow their flag (e.g. --steps 20); `{command} --help` lists the flags.";
            else if (Unrecognized().Match(message) is { Success: true } u)
                yield return u.Groups["value"].Value.StartsWith('-')
                    ? $"error: unknown option '{u.Groups["value"].Value}'; `{command} --help` lists the flags."
                    : $"error: unexpected argument '{u.Groups["value"].Value}'; `{command} --help` lists what it takes.";
            else if (Required().Match(message) is { Success: true } r)
                yield return $"error: {r.Groups["option"].Value} is required; `{command} --help` describes it.";
            else if (message.StartsWith("Required command was not provided", StringComparison.Ordinal))
                yield return $"error: a command is required ({string.Join(", ", parse.CommandResult.Command.Subcommands.Select(c => c.Name))}); `{command} --help` describes them.";
            else
                yield return "error: " + message.Trim();
        }
    }

    private static string? OptionOf(SymbolResult? result) => result switch
    {
        OptionResult option => option.Option.Name,
        ArgumentResult { Parent: OptionResult option } => option.Option.Name,
        _ => null,
    };

    private static IEnumerable<string> Path(CommandResult command) =>
        command.Parent is CommandResult parent ? [.. Path(parent), command.Command.Name] : [];

    // What a user types for each .NET type an option is declared with.
    private static string Kind(string type)
    {
        var inner = Regex.Match(type, @"^System\.Nullable`1\[(.+)\]$") is { Success: true } n ? n.Groups[1].Value : type;
        return inner switch
        {
            "System.Int32" or "System.Int64" or "System.UInt32" or "System.UInt64" or "System.Int16" => "a whole number",
            "System.Single" or "System.Double" or "System.Decimal" => "a number",
            "System.Boolean" => "true or false",
            "System.Uri" => "a URL",
            _ when inner.StartsWith("System.String", StringComparison.Ordinal) => "text",
            _ => "another kind of value",
        };
    }
}
