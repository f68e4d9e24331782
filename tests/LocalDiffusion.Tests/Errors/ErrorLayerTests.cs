using System.Text.RegularExpressions;

namespace LocalDiffusion.Tests.Errors;

/// <summary>
/// The error contract is the bottom layer (issue 20, and the families issue's layering): every stage and front-end
/// reads it, and it reads none of them. Child namespaces see their parent's types without a <c>using</c>, so the test
/// reads the code itself: no identifier in Errors/ (comments and strings removed) names a type from another folder.
/// </summary>
public sealed partial class ErrorLayerTests
{
    [GeneratedRegex(@"//[^\n]*|/\*.*?\*/|@?\$?""(?:[^""\\\n]|\\.)*""", RegexOptions.Singleline)]
    private static partial Regex CommentsAndStrings();

    [GeneratedRegex(@"\b[A-Z][A-Za-z0-9]*\b")]
    private static partial Regex Identifier();

    [Fact]
    public void Errors_depends_on_no_other_part_of_the_engine()
    {
        var assembly = typeof(StableDiffusionPipeline).Assembly;
        var others = assembly.GetTypes()
            .Where(t => t.Namespace is { } ns && ns.StartsWith("LocalDiffusion", StringComparison.Ordinal) && ns != "LocalDiffusion.Errors" && !t.Name.StartsWith('<'))
            .Select(t => t.Name.Split('`')[0]).ToHashSet(StringComparer.Ordinal);
        // Names that are also .NET's or plain words in these files, not references to the engine's types.
        others.ExceptWith(["Exception", "Kind", "Value", "File", "Key", "Stage", "Step", "Table", "Field"]);
        var folder = Path.Combine(TestPaths.RepoRoot, "src", "LocalDiffusion", "Errors");
        var files = Directory.GetFiles(folder, "*.cs");
        Assert.NotEmpty(files);
        foreach (var file in files)
        {
            var code = CommentsAndStrings().Replace(File.ReadAllText(file), " ");
            Assert.DoesNotMatch(@"using\s+LocalDiffusion\.(?!Errors\b)", code);
            var used = Identifier().Matches(code).Select(m => m.Value).Where(others.Contains).Distinct().ToList();
            Assert.True(used.Count == 0, $"{Path.GetFileName(file)} uses {string.Join(", ", used)} from another part of the engine");
        }
        // And the types every stage throws live here, so nothing below needs a stage to report an error.
        Assert.All(new[] { typeof(LocalDiffusion.Errors.InvalidRequestException), typeof(LocalDiffusion.Errors.ModelIncompatibleException), typeof(LocalDiffusion.Errors.ResourceLimitException) },
            t => Assert.Equal("LocalDiffusion.Errors", t.Namespace));
    }
}
