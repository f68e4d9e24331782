using System.Text.Unicode;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Cli;

/// <summary>
/// Text flags whose bytes were not UTF-8. On Linux the command line arrives as bytes and .NET decodes the ones that are
/// not UTF-8 to U+FFFD (�), so a prompt typed in a Latin-1 terminal would silently become another prompt. The raw bytes
/// (/proc/self/cmdline) tell such a U+FFFD from one typed on purpose; a text flag holding one is refused naming the flag
/// and the character. Elsewhere (Windows passes UTF-16, and no /proc) nothing is checked.
/// </summary>
internal static class ArgvText
{
    private static readonly Lazy<bool> Invalid = new(ReadInvalid);

    /// <summary>Whether this process's command line had bytes that are not UTF-8.</summary>
    public static bool HadInvalidUtf8 => Invalid.Value;

    /// <summary>Throws naming <paramref name="field"/> (a library field name: Prompt, NegativePrompt) when its text holds a decoded invalid byte.</summary>
    public static void Check(string? value, string field)
    {
        if (value is null) return;
        var at = value.IndexOf('\uFFFD');
        if (at < 0 || !HadInvalidUtf8) return;
        // The position counts characters (Unicode scalar values) from 1, as a user counts them, not UTF-16 units.
        var position = 1;
        foreach (var _ in value.AsSpan(0, at).EnumerateRunes()) position++;
        throw new InvalidRequestException(field, value, "UTF-8 text", called =>
            $"{called} has bytes that are not UTF-8 at character {position} (they would be read as U+FFFD, �, and the prompt would not be what was typed); " +
            "pass the text as UTF-8 (a UTF-8 locale such as LANG=C.UTF-8, or convert it with iconv -t UTF-8).");
    }

    private static bool ReadInvalid()
    {
        if (!OperatingSystem.IsLinux()) return false;
        try
        {
            return !Utf8.IsValid(File.ReadAllBytes("/proc/self/cmdline"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
