using System.Reflection;
using LocalDiffusion.Pipeline;

namespace LocalDiffusion.Tests.Layering;

/// <summary>
/// The engine's layering (the families issue), read from the compiled code by <see cref="NamespaceGraph"/> — so a child
/// namespace using a parent's type without a <c>using</c> counts too. Bottom to top: the error contract
/// (<c>LocalDiffusion.Errors</c>); the foundations (pixels, random numbers, tokenizers, schedulers, tensor shapes); the request contract
/// (the root namespace <c>LocalDiffusion</c>: request, options, result, progress, limits); the stages and components;
/// the family seam (<c>Families</c>) and one folder per family; the orchestrator and public face (<c>Pipeline</c>); the
/// in-process front-end adapters (<c>Integration</c>).
/// </summary>
public sealed class LayeringTests
{
    private const string Root = "LocalDiffusion";
    private static readonly Assembly Engine = typeof(StableDiffusionPipeline).Assembly;
    private static readonly Dictionary<string, Dictionary<string, string>> Graph = NamespaceGraph.Build(Engine)
        .Where(kv => IsEngine(kv.Key))
        .ToDictionary(kv => kv.Key, kv => kv.Value.Where(e => IsEngine(e.Key)).ToDictionary(e => e.Key, e => e.Value));

    private static bool IsEngine(string ns) => ns == Root || ns.StartsWith(Root + ".", StringComparison.Ordinal);

    private static IEnumerable<string> Uses(string ns) => Graph.TryGetValue(ns, out var edges) ? edges.Keys : [];

    private static string Why(string from, string to) => $"{from} → {to} ({Graph[from][to]})";

    [Fact]
    public void The_graph_is_read_from_the_code()
    {
        // A reader that saw nothing would pass every rule below: check it sees dependencies known to exist.
        Assert.Contains("LocalDiffusion.Errors", Uses(Root));
        Assert.Contains("LocalDiffusion.Families", Uses("LocalDiffusion.Families.Flux"));
        Assert.Contains("LocalDiffusion.Denoising", Uses("LocalDiffusion.ControlNet"));
        Assert.Contains(Root, Uses("LocalDiffusion.Latents")); // a child using its parent's GenerationRequest with no using line
    }

    [Fact]
    public void No_two_namespaces_depend_on_each_other()
    {
        var cycles = NamespaceGraph.Cycles(Graph);
        Assert.True(cycles.Count == 0, "namespaces that reach each other: " + string.Join("; ", cycles.Select(c =>
            string.Join(", ", c) + " — " + string.Join(", ", c.SelectMany(a => c.Where(b => Uses(a).Contains(b)).Select(b => Why(a, b)))))));
    }

    [Theory]
    [InlineData("LocalDiffusion.Errors")]
    [InlineData("LocalDiffusion.Randomness", "LocalDiffusion.Errors")]
    [InlineData("LocalDiffusion.Tokenizer", "LocalDiffusion.Errors")]
    [InlineData("LocalDiffusion.Imaging", "LocalDiffusion.Errors")]
    // Shape arithmetic shared by Adapters and Onnx (which uses Adapters, so neither may hold it for the other).
    [InlineData("LocalDiffusion.Tensors")]
    [InlineData("LocalDiffusion.Schedulers", "LocalDiffusion.Errors", "LocalDiffusion.Randomness")]
    // The contract: request, options, result, limits. Its images and its scheduler plug-in point are the foundations'.
    [InlineData(Root, "LocalDiffusion.Errors", "LocalDiffusion.Imaging", "LocalDiffusion.Schedulers", "LocalDiffusion.Randomness")]
    public void The_bottom_layers_use_only_what_is_below_them(string ns, params string[] allowed)
    {
        Assert.True(Graph.ContainsKey(ns), $"{ns} has no types");
        var extra = Uses(ns).Except(allowed).ToList();
        Assert.True(extra.Count == 0, string.Join("; ", extra.Select(to => Why(ns, to))));
    }

    [Fact]
    public void The_stages_know_no_family_and_no_orchestrator()
    {
        foreach (var ns in Graph.Keys)
        {
            if (ns.StartsWith("LocalDiffusion.Families", StringComparison.Ordinal) || ns is "LocalDiffusion.Pipeline" or "LocalDiffusion.Integration") continue;
            var upward = Uses(ns).Where(to => to.StartsWith("LocalDiffusion.Families", StringComparison.Ordinal) || to == "LocalDiffusion.Pipeline").ToList();
            Assert.True(upward.Count == 0, string.Join("; ", upward.Select(to => Why(ns, to))));
        }
    }

    [Fact]
    public void Families_plug_into_the_seam_and_know_neither_the_orchestrator_nor_each_other()
    {
        var families = Graph.Keys.Where(ns => ns.StartsWith("LocalDiffusion.Families.", StringComparison.Ordinal)).ToList();
        Assert.True(families.Count >= 2, $"family folders found: {string.Join(", ", families)}");
        foreach (var ns in families.Append("LocalDiffusion.Families"))
        {
            var wrong = Uses(ns).Where(to => to == "LocalDiffusion.Pipeline" || (to.StartsWith("LocalDiffusion.Families.", StringComparison.Ordinal) && to != ns)).ToList();
            Assert.True(wrong.Count == 0, string.Join("; ", wrong.Select(to => Why(ns, to))));
        }
    }

    [Fact]
    public void Only_the_front_end_adapters_use_the_orchestrator()
    {
        var users = Graph.Keys.Where(ns => ns != "LocalDiffusion.Pipeline" && Uses(ns).Contains("LocalDiffusion.Pipeline")).ToList();
        Assert.Equal(["LocalDiffusion.Integration"], users);
    }
}
