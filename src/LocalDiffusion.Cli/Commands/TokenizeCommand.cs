using System.CommandLine;
using System.Text.Json;
using LocalDiffusion.Tokenizer;
using Spectre.Console;

namespace LocalDiffusion.Cli.Commands;

/// <summary><c>localdiffusion tokenize</c>: the 77 CLIP ids of prompts; needs only the tokenizer files.</summary>
internal static class TokenizeCommand
{
    public static Command Create(IAnsiConsole console)
    {
        var model = new Option<string?>("--model", "-m") { Description = $"Model folder whose tokenizer/ to use. Default: {ModelLocator.DefaultModel}." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "A tokenizer folder (vocab.json, merges.txt) to use instead of a model's." };
        var prompt = new Option<string?>("--prompt", "-p") { Description = "Text to tokenize." };
        var file = new Option<string?>("--prompts-file") { Description = "A file with one prompt per line." };
        var json = new Option<bool>("--json") { Description = "Print JSON: [{text, ids, length, truncated}]." };
        var command = new Command("tokenize", "Show the CLIP token ids of prompts.") { model, tokenizer, prompt, file, json };
        command.Validators.Add(result =>
        {
            if ((result.GetValue(prompt) is null) == (result.GetValue(file) is null))
                result.AddError("Give exactly one of --prompt or --prompts-file.");
        });
        command.SetAction(parse =>
        {
            ArgvText.Check(parse.GetValue(prompt), nameof(GenerationRequest.Prompt));
            var dir = parse.GetValue(tokenizer) ?? Path.Combine(ModelLocator.Resolve(parse.GetValue(model)), "tokenizer");
            var clip = ClipTokenizer.Load(dir);
            var texts = parse.GetValue(prompt) is { } single ? [single] : ReadPrompts(parse.GetValue(file)!);
            var encoded = texts.Select(t => (Text: t, Tokens: clip.Encode(t))).ToList();
            if (parse.GetValue(json))
            {
                var payload = encoded.Select(e => new { text = e.Text, ids = e.Tokens.Ids, length = e.Tokens.Length, truncated = e.Tokens.TruncatedTokens });
                console.Profile.Out.Writer.WriteLine(JsonSerializer.Serialize(payload));
                return 0;
            }
            foreach (var (text, tokens) in encoded)
            {
                console.MarkupLineInterpolated($"[bold]{text}[/]");
                console.WriteLine($"  tokens: {tokens.Length} of {clip.MaxLength}" + (tokens.TruncatedTokens > 0 ? $" ({tokens.TruncatedTokens} truncated)" : ""));
                console.WriteLine($"  ids: [{string.Join(", ", tokens.Ids)}]");
            }
            return 0;
        });
        return command;
    }

    private static string[] ReadPrompts(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: prompts file not found (one prompt per line expected).", path);
        try
        {
            // Strict UTF-8, as batch's prompts file: a Latin-1 file would otherwise tokenize U+FFFD instead of its words.
            return File.ReadAllLines(path, new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true)).Where(l => l.Length > 0).ToArray();
        }
        catch (System.Text.DecoderFallbackException)
        {
            throw new LocalDiffusion.Errors.InvalidRequestException("--prompts-file", path, "UTF-8 text", called => $"{called} '{path}' is not UTF-8 text; convert it (e.g. iconv -t UTF-8).");
        }
    }
}
