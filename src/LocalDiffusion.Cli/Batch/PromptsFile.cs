using System.Text;
using System.Text.Json;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Cli.Batch;

/// <summary>
/// Reads a prompts file: one prompt per line, either plain text or a JSON object (a line starting with '{') with
/// <c>prompt</c> and optional <c>negative_prompt</c>, <c>seed</c>, <c>steps</c>, <c>guidance_scale</c>, <c>width</c>,
/// <c>height</c>, <c>scheduler</c>. Blank lines are skipped and not counted. The whole file is checked before any
/// picture is made: a bad line is an <see cref="ArgumentException"/> naming the file, the line and the field.
/// </summary>
internal static class PromptsFile
{
    /// <summary>The fields a JSON line may have (the OpenAI API extension names, plus width and height).</summary>
    public static readonly string[] Fields = ["prompt", "negative_prompt", "seed", "steps", "guidance_scale", "width", "height", "scheduler"];

    /// <summary>Every prompt of <paramref name="path"/>, numbered from 0.</summary>
    public static IReadOnlyList<BatchPrompt> Read(string path)
    {
        if (Directory.Exists(path)) throw new InvalidRequestException("--prompts-file", null, null, called => $"{called} '{path}' is a folder; give a text file with one prompt per line.");
        if (!File.Exists(path)) throw new InvalidRequestException("--prompts-file", null, null, called => $"{called} '{path}' does not exist.");
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path, new UTF8Encoding(false, throwOnInvalidBytes: true));
        }
        catch (DecoderFallbackException)
        {
            throw new InvalidRequestException("--prompts-file", null, null, called => $"{called} '{path}' is not UTF-8 text.");
        }
        var prompts = new List<BatchPrompt>();
        for (var i = 0; i < lines.Length; i++)
        {
            var text = lines[i].Trim();
            if (text.Length == 0) continue;
            prompts.Add(text.StartsWith('{') ? ParseJson(path, i + 1, prompts.Count, text) : new BatchPrompt(prompts.Count, i + 1, text));
        }
        if (prompts.Count == 0) throw new InvalidRequestException("--prompts-file", null, null, called => $"{called} '{path}' holds no prompts.");
        return prompts;
    }

    private static BatchPrompt ParseJson(string path, int line, int k, string text)
    {
        JsonElement json;
        try
        {
            using var document = JsonDocument.Parse(text);
            json = document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw Bad(path, line, $"not valid JSON ({e.Message.Split(" LineNumber:")[0].Split(" Path:")[0].TrimEnd(' ', '.')})");
        }
        if (json.ValueKind != JsonValueKind.Object) throw Bad(path, line, "a JSON line must be an object such as {\"prompt\": \"a red circle\"}");
        foreach (var property in json.EnumerateObject())
            if (!Fields.Contains(property.Name))
                throw Bad(path, line, $"unknown field '{property.Name}' (known: {string.Join(", ", Fields)})");
        var prompt = String(path, line, json, "prompt") ?? throw Bad(path, line, "'prompt' is missing");
        if (prompt.Trim().Length == 0) throw Bad(path, line, "'prompt' is empty");
        return new BatchPrompt(k, line, prompt)
        {
            NegativePrompt = String(path, line, json, "negative_prompt"),
            Seed = Integer(path, line, json, "seed", 0, long.MaxValue),
            Steps = (int?)Integer(path, line, json, "steps", 1, 1000),
            GuidanceScale = Number(path, line, json, "guidance_scale"),
            Width = (int?)Integer(path, line, json, "width", 8, 16384),
            Height = (int?)Integer(path, line, json, "height", 8, 16384),
            Scheduler = String(path, line, json, "scheduler"),
        };
    }

    private static string? String(string path, int line, JsonElement json, string field) =>
        !json.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null ? null
        : value.ValueKind == JsonValueKind.String ? value.GetString()
        : throw Bad(path, line, $"'{field}' must be a string");

    private static long? Integer(string path, int line, JsonElement json, string field, long min, long max)
    {
        if (!json.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.Number || !value.TryGetInt64(out var n) || n < min || n > max)
            throw Bad(path, line, $"'{field}' must be a whole number from {min} to {max}");
        return n;
    }

    private static float? Number(string path, int line, JsonElement json, string field)
    {
        if (!json.TryGetProperty(field, out var value) || value.ValueKind == JsonValueKind.Null) return null;
        if (value.ValueKind != JsonValueKind.Number || !float.IsFinite(value.GetSingle()))
            throw Bad(path, line, $"'{field}' must be a number");
        return value.GetSingle();
    }

    private static ArgumentException Bad(string path, int line, string what) =>
        new($"--prompts-file '{path}' line {line}: {what}.", "--prompts-file");
}
