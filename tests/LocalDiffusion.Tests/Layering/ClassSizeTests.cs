using System.Text.RegularExpressions;

namespace LocalDiffusion.Tests.Layering;

/// <summary>
/// No class over 400 lines (the families issue): every source file's lines count for the first type it declares at the top
/// level, and the files of a partial type add up, so a class split over partial files is measured whole.
/// </summary>
public sealed partial class ClassSizeTests
{
    private const int Limit = 400;

    [GeneratedRegex(@"^namespace\s+([\w.]+)", RegexOptions.Multiline)]
    private static partial Regex Namespace();

    [GeneratedRegex(@"^(?:public|internal)\s+(?:(?:sealed|static|abstract|readonly|partial)\s+)*(?:class|record|struct|interface|enum)\s+(\w+)", RegexOptions.Multiline)]
    private static partial Regex TopLevelType();

    [Fact]
    public void No_class_is_over_400_lines()
    {
        var sizes = new Dictionary<string, (int Lines, List<string> Files)>(StringComparer.Ordinal);
        var files = Directory.GetFiles(Path.Combine(TestPaths.RepoRoot, "src"), "*.cs", SearchOption.AllDirectories)
            .Where(f => !f.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal)
                        && !f.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .ToList();
        Assert.True(files.Count > 100, $"only {files.Count} source files found under src/");
        foreach (var file in files)
        {
            var text = File.ReadAllText(file);
            if (TopLevelType().Match(text) is not { Success: true } type) continue;
            var key = Namespace().Match(text).Groups[1].Value + "." + type.Groups[1].Value;
            var (lines, named) = sizes.GetValueOrDefault(key, (0, []));
            sizes[key] = (lines + text.Count(c => c == '\n'), [.. named, Path.GetFileName(file)]);
        }
        // The public face is split over partial files; it must still be counted as one class.
        Assert.True(sizes.Values.Any(s => s.Files.Count > 1), "no partial type found: the files of one type are not being added up");
        var over = sizes.Where(s => s.Value.Lines > Limit).Select(s => $"{s.Key}: {s.Value.Lines} lines in {string.Join(", ", s.Value.Files)}").ToList();
        Assert.True(over.Count == 0, string.Join("; ", over));
    }
}
