namespace LocalDiffusion.Adapters;

/// <summary>
/// Finds the model weight a LoRA module names. Both sides may carry a prefix the other lacks: the exporter's (nodes
/// named <c>/unet/down_blocks.0/…</c> or <c>/net/…</c>) and the LoRA's (<c>text_model.encoder.layers.0…</c> against nodes
/// <c>/layers.0/…</c>). So a LoRA module matches a weight when, after removing from the LoRA side only leading parts that
/// all its modules share, it equals a segment suffix of the weight's module path. kohya's underscore-joined names are
/// compared with the weight paths' underscore forms: the model's real names decide where the dots were
/// (<c>to_out_0</c> → <c>to_out.0</c>, <c>ff_net_0_proj</c> → <c>ff.net.0.proj</c>), never a guess.
/// </summary>
internal sealed class ModuleResolver
{
    // suffix form (dotted, and underscored) → the weights whose module path ends with it
    private readonly Dictionary<string, List<WeightTarget>> _dotted = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<WeightTarget>> _underscored = new(StringComparer.Ordinal);

    public ModuleResolver(IEnumerable<WeightTarget> targets)
    {
        foreach (var target in targets)
        {
            var segments = target.ModulePath.Split('.');
            for (var i = 0; i < segments.Length; i++)
            {
                var suffix = string.Join('.', segments[i..]);
                Add(_dotted, suffix, target);
                Add(_underscored, suffix.Replace('.', '_'), target);
            }
        }
    }

    private static void Add(Dictionary<string, List<WeightTarget>> index, string key, WeightTarget target)
    {
        if (!index.TryGetValue(key, out var list)) index[key] = list = [];
        if (!list.Contains(target)) list.Add(target);
    }

    /// <summary>
    /// The weight for <paramref name="module"/> (dotted, or kohya-underscored), allowing the LoRA side to drop leading
    /// characters up to <paramref name="sharedPrefixLength"/> (the prefix all the LoRA's modules of this component share).
    /// Returns null when nothing matches; throws <see cref="InvalidOperationException"/> with the candidates when several do.
    /// </summary>
    public WeightTarget? Resolve(string module, bool underscored, int sharedPrefixLength)
    {
        var index = underscored ? _underscored : _dotted;
        var separator = underscored ? '_' : '.';
        for (var start = 0; start <= sharedPrefixLength && start < module.Length;)
        {
            if (index.TryGetValue(module[start..], out var found))
            {
                var distinct = found.Select(t => t.Initializer).Distinct().Count();
                if (distinct == 1) return found[0];
                throw new InvalidOperationException($"it matches {distinct} weights of the model ({string.Join(", ", found.Select(t => t.NodeName).Take(4))}{(distinct > 4 ? ", …" : "")})");
            }
            var next = module.IndexOf(separator, start);
            if (next < 0) break;
            start = next + 1;
        }
        return null;
    }

    /// <summary>The length of the leading part, ending at a separator, that all of <paramref name="modules"/> share.</summary>
    public static int SharedPrefixLength(IReadOnlyList<string> modules, bool underscored)
    {
        if (modules.Count < 2) return 0; // one module alone shares nothing with anything: no stripping
        var separator = underscored ? '_' : '.';
        var first = modules[0];
        var length = first.Length;
        foreach (var m in modules.Skip(1))
        {
            var i = 0;
            while (i < length && i < m.Length && m[i] == first[i]) i++;
            length = i;
        }
        var cut = first.LastIndexOf(separator, Math.Max(0, Math.Min(length, first.Length - 1)));
        return cut < 0 ? 0 : cut + 1;
    }
}
