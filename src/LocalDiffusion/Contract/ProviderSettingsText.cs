using System.Globalization;
using LocalDiffusion.Errors;

namespace LocalDiffusion;

/// <summary>Parses the <c>key=value,key=value</c> form that the CLI's provider options take.</summary>
internal static class ProviderSettingsText
{
    /// <summary>Splits <paramref name="text"/> into ordered key/value pairs; keys are lower-cased.</summary>
    /// <exception cref="ArgumentException">An entry has no '=' or an empty key; the message names <paramref name="field"/>.</exception>
    public static List<(string Key, string Value)> Pairs(string text, string field)
    {
        ArgumentNullException.ThrowIfNull(text);
        var pairs = new List<(string, string)>();
        foreach (var entry in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = entry.IndexOf('=');
            if (eq <= 0)
                throw new InvalidRequestException(field, text, "KEY=VALUE,KEY=VALUE", name => $"{name}: '{entry}' is not KEY=VALUE.");
            pairs.Add((entry[..eq].Trim().ToLowerInvariant(), entry[(eq + 1)..].Trim()));
        }
        return pairs;
    }

    /// <summary>1/0, true/false, on/off, yes/no.</summary>
    public static bool Bool(string value, string field, string key) => value.ToLowerInvariant() switch
    {
        "1" or "true" or "on" or "yes" => true,
        "0" or "false" or "off" or "no" => false,
        _ => throw new InvalidRequestException(field, value, "1 or 0", name => $"{name}: {key}={value} is not a boolean (use 1 or 0)."),
    };

    /// <summary>A byte count: a plain number or one ending in KB/MB/GB/TB (powers of 1024).</summary>
    public static long Bytes(string value, string field, string key)
    {
        var text = value.Trim().ToUpperInvariant();
        long scale = 1;
        foreach (var (suffix, factor) in new[] { ("TB", 1L << 40), ("GB", 1L << 30), ("MB", 1L << 20), ("KB", 1L << 10), ("B", 1L) })
        {
            if (text.EndsWith(suffix, StringComparison.Ordinal)) { scale = factor; text = text[..^suffix.Length].Trim(); break; }
        }
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var number) || number <= 0 || number * scale > long.MaxValue)
            throw new InvalidRequestException(field, value, "a positive byte count", name => $"{name}: {key}={value} is not a positive byte count (e.g. 8GB).");
        return (long)(number * scale);
    }
}
