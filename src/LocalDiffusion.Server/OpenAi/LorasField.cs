using System.Globalization;
using System.Text.Json;
using LocalDiffusion.Adapters;
using LocalDiffusion.Server.Errors;

namespace LocalDiffusion.Server.OpenAi;

/// <summary>
/// The <c>loras</c> extension of the OpenAI image routes: <c>[{"name": "style", "weight": 0.8}, …]</c>. Each name is
/// resolved in the server's <c>--lora-dir</c> as a prompt's <c>&lt;lora:NAME:WEIGHT&gt;</c> is (<see cref="LoraDirectory.Find"/>),
/// so a client picks among the files the server lists and can never make it open a path of its choosing.
/// </summary>
internal static class LorasField
{
    public const string Name = "loras";

    /// <summary>
    /// The weights accepted here. A1111 does not bound a tag's weight, but LoRAs are used between about −2 and 2: a
    /// weight beyond ±5 is almost surely a typo (8 for 0.8) and draws noise, so it is refused before any work.
    /// </summary>
    public const double MaxWeight = 5;

    /// <summary>The adapters the body asks for, or null when it has no <c>loras</c>.</summary>
    /// <param name="body">The JSON body, or a multipart form's fields (where <c>loras</c> is the array as JSON text).</param>
    /// <param name="directory">The server's <c>--lora-dir</c>; null when it has none.</param>
    /// <param name="strictTypes">A JSON body: the field must be a JSON array, not a string holding one.</param>
    public static IReadOnlyList<LoraAdapter>? Parse(JsonElement body, string? directory, bool strictTypes)
    {
        if (!body.TryGetProperty(Name, out var field) || field.ValueKind == JsonValueKind.Null) return null;
        if (field.ValueKind == JsonValueKind.String && !strictTypes) return ParseText(field.GetString()!, directory);
        if (field.ValueKind != JsonValueKind.Array)
            throw ApiException.BadRequest(Name, $"'{Name}' must be an array of {{\"name\": …, \"weight\": …}} objects; got {Http.JsonFields.Describe(field)}.", "invalid_type");
        var count = field.GetArrayLength();
        if (count == 0) return null;
        if (directory is null)
            throw ApiException.BadRequest(Name, $"'{Name}' asks for {count} LoRA(s), but this server has no LoRA folder (start it with --lora-dir DIR).");
        var loras = new List<LoraAdapter>(count);
        var i = 0;
        foreach (var entry in field.EnumerateArray())
        {
            loras.Add(ParseEntry(entry, i, directory));
            i++;
        }
        return loras;
    }

    // A form field holds text: the same array as JSON.
    private static IReadOnlyList<LoraAdapter>? ParseText(string text, string? directory)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(text);
        }
        catch (JsonException)
        {
            throw ApiException.BadRequest(Name, $"'{Name}' must be a JSON array such as [{{\"name\": \"style\", \"weight\": 0.8}}]; got the text \"{Truncate(text)}\".", "invalid_type");
        }
        using (document)
        {
            using var wrapper = JsonDocument.Parse($"{{\"{Name}\": {document.RootElement.GetRawText()}}}");
            return Parse(wrapper.RootElement, directory, strictTypes: true);
        }
    }

    private static LoraAdapter ParseEntry(JsonElement entry, int i, string directory)
    {
        var at = $"{Name}[{i}]";
        if (entry.ValueKind != JsonValueKind.Object)
            throw ApiException.BadRequest(at, $"'{at}' must be an object {{\"name\": …, \"weight\": …}}; got {Http.JsonFields.Describe(entry)}.", "invalid_type");
        if (!entry.TryGetProperty("name", out var nameElement) || nameElement.ValueKind == JsonValueKind.Null)
            throw ApiException.BadRequest($"{at}.name", $"Missing required parameter: '{at}.name' (a LoRA's name as /sdapi/v1/loras lists it).", "missing_required_parameter");
        if (nameElement.ValueKind != JsonValueKind.String)
            throw ApiException.BadRequest($"{at}.name", $"'{at}.name' must be a string; got {Http.JsonFields.Describe(nameElement)}.", "invalid_type");
        var weight = 1.0;
        if (entry.TryGetProperty("weight", out var weightElement) && weightElement.ValueKind != JsonValueKind.Null)
        {
            if (weightElement.ValueKind != JsonValueKind.Number)
                throw ApiException.BadRequest($"{at}.weight", $"'{at}.weight' must be a number; got {Http.JsonFields.Describe(weightElement)}.", "invalid_type");
            weight = weightElement.GetDouble();
            if (!double.IsFinite(weight) || Math.Abs(weight) > MaxWeight)
                throw ApiException.BadRequest($"{at}.weight", $"'{at}.weight' must be between -{MaxWeight} and {MaxWeight}; got {weightElement.GetRawText()}.");
        }
        return new LoraAdapter(Resolve(nameElement.GetString()!, $"{at}.name", directory), (float)weight);
    }

    private static string Resolve(string name, string param, string directory)
    {
        var matches = LoraDirectory.Find(directory, name);
        if (matches.Count == 1) return matches[0];
        var names = LoraDirectory.List(directory).Select(f => LoraDirectory.NameOf(directory, f)).ToList();
        if (matches.Count > 1)
            throw ApiException.BadRequest(param, $"'{param}' \"{Truncate(name)}\" matches {matches.Count} LoRAs ({string.Join(", ", matches.Select(f => LoraDirectory.NameOf(directory, f)))}); use one of those names.");
        var listed = names.Count == 0 ? "the server's LoRA folder is empty"
            : $"the server has: {string.Join(", ", names.Take(50))}" + (names.Count > 50 ? $" and {(names.Count - 50).ToString(CultureInfo.InvariantCulture)} more (GET /sdapi/v1/loras)" : "");
        throw ApiException.BadRequest(param, $"'{param}': no LoRA named \"{Truncate(name)}\" ({listed}). Give a name as /sdapi/v1/loras lists it, not a path or file name.", "lora_not_found");
    }

    private static string Truncate(string s) => s.Length <= 60 ? s : s[..60] + "…";
}
