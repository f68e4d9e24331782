using System.Text;

namespace LocalDiffusion.Tokenizer;

/// <summary>
/// The HTML5 named character references (Python's <c>html.entities.html5</c>), loaded once from the embedded
/// Html5Entities.txt. Keys are names without '&amp;', with their ';' when the reference is written with one.
/// </summary>
internal static class Html5Entities
{
    private const string ResourceName = "LocalDiffusion.Tokenizer.Html5Entities.txt";

    /// <summary>Name → replacement text (read-only after loading).</summary>
    public static Dictionary<string, string> ByName { get; } = Load();

    /// <summary>The longest name (without '&amp;'), to bound prefix searches.</summary>
    public static int MaxNameLength { get; } = ByName.Keys.Max(k => k.Length);

    private static Dictionary<string, string> Load()
    {
        using var stream = typeof(Html5Entities).Assembly.GetManifestResourceStream(ResourceName)
            ?? throw new InvalidOperationException($"Embedded resource {ResourceName} is missing from the LocalDiffusion assembly.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var entities = new Dictionary<string, string>(2300, StringComparer.Ordinal);
        var value = new StringBuilder();
        while (reader.ReadLine() is { } line)
        {
            if (line.Length == 0 || line[0] == '#')
                continue;
            var tab = line.IndexOf('\t');
            value.Clear();
            foreach (var hex in line.AsSpan(tab + 1).Split(' '))
                value.Append(char.ConvertFromUtf32(int.Parse(line.AsSpan(tab + 1)[hex], System.Globalization.NumberStyles.HexNumber)));
            entities[line[..tab]] = value.ToString();
        }
        return entities;
    }
}
