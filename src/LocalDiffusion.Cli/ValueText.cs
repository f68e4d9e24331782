using System.Globalization;

namespace LocalDiffusion.Cli;

/// <summary>The small value forms several flags share: <c>WIDTHxHEIGHT</c> and <c>PATH[:NUMBER]</c>.</summary>
internal static class ValueText
{
    /// <summary><c>WIDTHxHEIGHT</c> (or <c>X</c>) in plain digits; the caller checks the range.</summary>
    public static bool TryParseSize(string text, out int width, out int height)
    {
        width = height = 0;
        var parts = text.Split('x', 'X');
        return parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out width)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out height);
    }

    /// <summary>
    /// <c>PATH[:NUMBER]</c>: the number is what follows the last ':' when it parses (a Windows drive's ':' at index 1 is
    /// not one); null when there is none.
    /// </summary>
    public static (string Path, float? Number) SplitPathNumber(string value)
    {
        var colon = value.LastIndexOf(':');
        return colon > 1 && float.TryParse(value[(colon + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var number)
            ? (value[..colon], number)
            : (value, null);
    }
}
