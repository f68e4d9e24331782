using System.Globalization;
using System.Text.Json;
using LocalDiffusion.Server.Errors;

namespace LocalDiffusion.Server.Http;

/// <summary>
/// Typed access to a request's JSON fields; a field of the wrong type or out of range is a 400 naming it. JSON null
/// counts as absent (SDKs send nulls for options left unset). With <paramref name="strictTypes"/> (OpenAI's JSON bodies) a
/// number or boolean must be one; otherwise strings holding them are accepted, as A1111's pydantic models and multipart
/// forms (where every field is text) need.
/// </summary>
internal readonly struct JsonFields(JsonElement body, bool strictTypes = false)
{
    private bool TryGet(string name, out JsonElement value)
    {
        if (body.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null) return true;
        value = default;
        return false;
    }

    public bool Has(string name) => TryGet(name, out _);

    public string? String(string name)
    {
        if (!TryGet(name, out var v)) return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString()
            : throw ApiException.BadRequest(name, $"'{name}' must be a string; got {Describe(v)}.", "invalid_type");
    }

    /// <summary>A string that must be one of <paramref name="allowed"/> (case-insensitive); returned in lower case.</summary>
    public string? Choice(string name, params string[] allowed)
    {
        var s = String(name);
        if (s is null) return null;
        var lower = s.ToLowerInvariant();
        return allowed.Contains(lower) ? lower
            : throw ApiException.BadRequest(name, $"Invalid value '{s}' for '{name}'; supported values are: {string.Join(", ", allowed.Select(a => $"'{a}'"))}.");
    }

    public bool? Bool(string name)
    {
        if (!TryGet(name, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            JsonValueKind.String when !strictTypes && bool.TryParse(v.GetString(), out var b) => b,
            _ => throw ApiException.BadRequest(name, $"'{name}' must be a boolean; got {Describe(v)}.", "invalid_type"),
        };
    }

    public long? Long(string name, long min, long max)
    {
        if (!TryGet(name, out var v)) return null;
        long value;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var l)) value = l;
        else if (v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out var d) && d == Math.Floor(d) && Math.Abs(d) < 9e18) value = (long)d;
        else if (v.ValueKind == JsonValueKind.String && !strictTypes && long.TryParse(v.GetString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var s)) value = s;
        else throw ApiException.BadRequest(name, $"'{name}' must be an integer; got {Describe(v)}.", "invalid_type");
        if (value < min || value > max)
            throw ApiException.BadRequest(name, $"'{name}' must be between {min} and {max}; got {value}.");
        return value;
    }

    public int? Int(string name, int min, int max) => (int?)Long(name, min, max);

    public double? Double(string name, double min, double max)
    {
        if (!TryGet(name, out var v)) return null;
        double value;
        if (v.ValueKind == JsonValueKind.Number) value = v.GetDouble();
        else if (v.ValueKind == JsonValueKind.String && !strictTypes && double.TryParse(v.GetString(), NumberStyles.Float, CultureInfo.InvariantCulture, out var s)) value = s;
        else throw ApiException.BadRequest(name, $"'{name}' must be a number; got {Describe(v)}.", "invalid_type");
        if (!double.IsFinite(value) || value < min || value > max)
            throw ApiException.BadRequest(name, $"'{name}' must be between {min.ToString(CultureInfo.InvariantCulture)} and {max.ToString(CultureInfo.InvariantCulture)}; got {value.ToString(CultureInfo.InvariantCulture)}.");
        return value;
    }

    public JsonElement? Object(string name) =>
        TryGet(name, out var v) && v.ValueKind == JsonValueKind.Object ? v : null;

    /// <summary>A JSON value as an error message describes it ("the string \"x\"", "an array").</summary>
    internal static string Describe(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.String => $"the string \"{Truncate(v.GetString()!)}\"",
        JsonValueKind.Number => $"the number {v.GetRawText()}",
        JsonValueKind.True or JsonValueKind.False => $"the boolean {v.GetRawText()}",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        _ => v.ValueKind.ToString().ToLowerInvariant(),
    };

    private static string Truncate(string s) => s.Length <= 40 ? s : s[..40] + "…";
}
