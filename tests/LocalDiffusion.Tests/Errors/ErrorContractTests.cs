using LocalDiffusion.Pipeline;
using System.Runtime.CompilerServices;
using System.Text.RegularExpressions;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Tests.Errors;

/// <summary>
/// The README's error table says what ErrorContract does: for each row, the exception types it names are of the kind
/// whose exit code and HTTP status the row gives, and every kind has a row.
/// </summary>
public sealed partial class ErrorContractTests
{
    [GeneratedRegex(@"`([A-Za-z]+Exception)`")]
    private static partial Regex ExceptionName();

    [Fact]
    public void The_readme_error_table_is_the_contract()
    {
        var readme = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "README.md"));
        var section = readme[readme.IndexOf("\n## Errors", StringComparison.Ordinal)..];
        section = section[..section.IndexOf("\n## ", 5, StringComparison.Ordinal)];
        var rows = section.Split('\n').Where(l => l.StartsWith("| ", StringComparison.Ordinal) && !l.StartsWith("| what", StringComparison.Ordinal)).ToList();
        var seen = new HashSet<ErrorKind>();
        foreach (var row in rows)
        {
            var cells = row.Split('|').Select(c => c.Trim()).ToArray();
            var (library, cli, http) = (cells[2], cells[3], cells[4]);
            var exit = int.Parse(Regex.Match(cli, @"exit (\d+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            var status = int.Parse(Regex.Match(http, @"^(\d{3})").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            var names = ExceptionName().Matches(library).Select(m => m.Groups[1].Value).ToList();
            var kinds = names.Count == 0 ? [ErrorKind.Internal] : names.Select(n => ErrorContract.KindOf(Instance(n))).Distinct().ToList();
            var kind = Assert.Single(kinds);
            seen.Add(kind);
            var mapping = ErrorContract.For(kind);
            Assert.True(mapping.ExitCode == exit, $"README says exit {exit} for {kind}; the contract says {mapping.ExitCode}: {row}");
            Assert.True(mapping.HttpStatus == status, $"README says HTTP {status} for {kind}; the contract says {mapping.HttpStatus}: {row}");
            if (mapping.Code is { } code) Assert.Contains(code == "invalid_value" ? "invalid_request_error" : code, http);
            Assert.True(http.Contains($"A1111 `{mapping.A1111Error}`", StringComparison.Ordinal), $"README's A1111 error for {kind} is not `{mapping.A1111Error}`: {row}");
        }
        Assert.Equal(Enum.GetValues<ErrorKind>().Order(), seen.Order());
    }

    // An exception of the named type, unconstructed: the contract decides by type alone.
    private static Exception Instance(string name)
    {
        var type = new[] { typeof(StableDiffusionPipeline).Assembly, typeof(object).Assembly }
            .SelectMany(a => a.GetTypes()).First(t => t.Name == name && typeof(Exception).IsAssignableFrom(t));
        return (Exception)RuntimeHelpers.GetUninitializedObject(type);
    }
}
