using System.Runtime.InteropServices;
using LocalDiffusion.Tensors;

namespace LocalDiffusion.Adapters;

/// <summary>
/// Hands LoRA-merged Conv weights to the optimised-model cache's graph, so a session with them opens from the cache
/// instead of optimising the source again. ONNX Runtime's "all" level rewrites most Convs into NCHWc Convs whose filters
/// it stores reordered (<see cref="NchwcFilterLayout"/>) under new names (<c>reorder_token_N</c>); a replaced weight under
/// the model's name would be ignored there. So each replaced Conv weight is matched to the cached graph's NCHWc Conv by
/// the module path of its node's name (any prefix, as <see cref="ModuleResolver"/> resolves), the layout is confirmed
/// from the data — the cached filter must be exactly the model's own filter reordered with one block size, and with no
/// other of the layouts tried — and the merged weight is handed over reordered the same way. Anything else (a filter not
/// found, another layout, the input-channel-only layout of a first Conv, padded channels, an ambiguous match) gives
/// null, and the caller optimises the source as before: never a session with a weight in the wrong order.
/// </summary>
internal static class CachedConvWeights
{
    /// <summary>What identifies the cached graph at <paramref name="cachedPath"/> as stored (a rebuilt entry names its filters anew).</summary>
    public static string KeyFor(string cachedPath)
    {
        var graph = new FileInfo(cachedPath);
        var data = new FileInfo(cachedPath + ".data");
        return $"{Path.GetFullPath(cachedPath)}|{graph.Length}|{graph.LastWriteTimeUtc.Ticks}|{(data.Exists ? data.Length : -1)}|{(data.Exists ? data.LastWriteTimeUtc.Ticks : 0)}";
    }

    /// <summary>
    /// The reordered filters that let <paramref name="cachedPath"/> (the optimised graph of <paramref name="sourcePath"/>)
    /// run with <paramref name="overrides"/>, or null with <paramref name="reason"/> when any replaced weight cannot be
    /// placed in it with certainty. Weights the cached graph still has under their own names and shapes (MatMul, Gemm,
    /// a Conv the optimiser left as it was) need nothing: they are handed over as they are.
    /// </summary>
    public static CachedConvForm? TryMap(string sourcePath, string cachedPath, InitializerOverrides overrides, out string? reason)
    {
        try
        {
            using var cached = ModelWeights.Open(cachedPath);
            using var source = ModelWeights.Open(sourcePath);
            var sourceConvs = new Dictionary<string, WeightTarget>(StringComparer.Ordinal);
            foreach (var t in source.Targets)
                if (t.Layout == WeightLayout.Conv) sourceConvs.TryAdd(t.Initializer, t);
            var plainConvs = new HashSet<string>(StringComparer.Ordinal);
            foreach (var t in cached.Targets)
                if (t.Layout == WeightLayout.Conv) plainConvs.Add(t.Initializer);
            var filters = new ModuleResolver(cached.NchwcConvFilters());
            // The check's two working copies are as large as the largest filter, and shared by all of them.
            var largest = 0L;
            foreach (var (_, dims, conv) in overrides.Entries)
                if (conv) largest = Math.Max(largest, TensorShape.Count(dims));
            var scratch = new Scratch(new float[largest], new float[largest]);
            var form = new CachedConvForm();
            try
            {
                foreach (var (name, dims, conv) in overrides.Entries)
                {
                    if (cached.HasInitializer(name, dims) && (!conv || plainConvs.Contains(name))) continue;
                    reason = !conv ? $"{name} is not in the cached graph with dimensions [{string.Join(", ", dims)}]"
                        : !sourceConvs.TryGetValue(name, out var target) ? $"{name} is not a Conv weight of {sourcePath}"
                        : Reorder(source, cached, filters, target, overrides.Float32Span(name), form, scratch);
                    if (reason is not null)
                    {
                        form.Dispose();
                        return null;
                    }
                }
            }
            catch
            {
                form.Dispose();
                throw;
            }
            reason = null;
            return form;
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            reason = $"the cached graph could not be read ({e.Message})";
            return null;
        }
    }

    private sealed record Scratch(float[] Own, float[] Stored);

    // Adds target's merged values, reordered, under the cached NCHWc Conv's filter name; else says why not.
    private static string? Reorder(ModelWeights source, ModelWeights cached, ModuleResolver filters, WeightTarget target, ReadOnlySpan<float> merged,
        CachedConvForm form, Scratch scratch)
    {
        WeightTarget? filter;
        try
        {
            // Any leading part of the module path may go: the cached graph's node names need not carry the same prefix.
            filter = filters.Resolve(target.ModulePath, underscored: false, sharedPrefixLength: target.ModulePath.Length);
        }
        catch (InvalidOperationException e)
        {
            return $"{target.NodeName}: {e.Message} among the cached graph's NCHWc Convs";
        }
        if (filter is null) return $"{target.NodeName}: no NCHWc Conv of module {target.ModulePath} in the cached graph";
        if (!filter.Dims.AsSpan().SequenceEqual(target.Dims))
            return $"{target.NodeName}: the cached filter {filter.Initializer} is [{string.Join(", ", filter.Dims)}], not [{string.Join(", ", target.Dims)}] (padded channels)";
        if (merged.Length != TensorShape.Count(target.Dims) || merged.Length > scratch.Own.Length)
            return $"{target.NodeName}: the merged weight holds {merged.Length} values, not those of [{string.Join(", ", target.Dims)}]";
        var own = scratch.Own.AsSpan(0, merged.Length);
        var stored = scratch.Stored.AsSpan(0, merged.Length);
        source.ReadInto(target, own);
        cached.ReadInto(filter, stored);
        if (ConfirmedBlock(own, stored, target.Dims) is not { } block)
            return $"{target.NodeName}: the cached filter {filter.Initializer} is not the model's filter in the blocked layout with block 8 or 16";
        var blocked = new float[merged.Length];
        NchwcFilterLayout.ToBlocked(merged, blocked, target.Dims, block);
        form.Add(target.Initializer, filter.Initializer, blocked, filter.Dims);
        return null;
    }

    // The one block size with which the model's own filter, reordered, is bit for bit the cached filter; null when none
    // is, or when more than one layout (the unreordered one included) would fit — a filter whose values do not tell the
    // layouts apart (all equal, say) cannot say in which order the merged weight must go.
    private static int? ConfirmedBlock(ReadOnlySpan<float> own, ReadOnlySpan<float> stored, long[] dims)
    {
        var matches = MemoryMarshal.AsBytes(own).SequenceEqual(MemoryMarshal.AsBytes(stored)) ? 1 : 0;
        int? found = null;
        foreach (var block in NchwcFilterLayout.Blocks)
        {
            if (!NchwcFilterLayout.Fits(dims, block) || !NchwcFilterLayout.IsBlocked(own, stored, dims, block)) continue;
            matches++;
            found = block;
        }
        return matches == 1 ? found : null;
    }
}
