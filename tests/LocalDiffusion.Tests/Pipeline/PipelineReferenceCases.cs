using System.Text.Json;

namespace LocalDiffusion.Tests.Pipeline;

/// <summary>
/// The named cases of a pipeline reference file under TestData/Pipeline (written by a script under
/// tools/pipeline_reference from diffusers v0.31.0's steps): <c>{"cases": [{"name": …, …}, …]}</c>.
/// </summary>
internal sealed class PipelineReferenceCases(string fileName)
{
    private readonly Lazy<JsonDocument> _document = new(() =>
        JsonDocument.Parse(File.ReadAllText(TestPaths.TestData("Pipeline", fileName))));

    /// <summary>Every case, in file order.</summary>
    public JsonElement.ArrayEnumerator All => _document.Value.RootElement.GetProperty("cases").EnumerateArray();

    /// <summary>The case names, for a theory's MemberData.</summary>
    public TheoryData<string> Names => [.. All.Select(c => c.GetProperty("name").GetString()!)];

    /// <summary>The case called <paramref name="name"/>.</summary>
    public JsonElement Case(string name) => All.Single(e => e.GetProperty("name").GetString() == name);
}
