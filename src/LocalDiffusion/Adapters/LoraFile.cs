namespace LocalDiffusion.Adapters;

/// <summary>What kind of low-rank change a layer holds.</summary>
internal enum LoraKind
{
    /// <summary>LoRA/LoCon: ΔW = up · down.</summary>
    LoRA,

    /// <summary>LyCORIS LoHa: ΔW = (w1a · w1b) ⊙ (w2a · w2b).</summary>
    LoHa,

    /// <summary>LyCORIS LoKr: ΔW = w1 ⊗ w2 (each factor whole or a low-rank product).</summary>
    LoKr,
}

/// <summary>One module's change in a file: its keys by part, and the alpha (null: none in the file).</summary>
/// <param name="Key">Component and module (the part is that of the first key).</param>
/// <param name="Kind">LoRA, LoHa or LoKr.</param>
/// <param name="Parts">The tensors by part (LoRA: down [rank, in(, kh, kw)] and up [out, rank(, 1, 1)]).</param>
/// <param name="Alpha">The alpha value, when the file has one.</param>
internal sealed record LoraLayer(LoraKey Key, LoraKind Kind, IReadOnlyDictionary<LoraPart, SafetensorsEntry> Parts, float? Alpha)
{
    /// <summary>The key that names the layer in messages (LoRA: the down matrix; LyCORIS: its first factor).</summary>
    public SafetensorsEntry Down => Kind switch
    {
        LoraKind.LoRA => Parts[LoraPart.Down],
        LoraKind.LoHa => Parts[LoraPart.HadaW1A],
        _ => Parts.GetValueOrDefault(LoraPart.LokrW1) ?? Parts[LoraPart.LokrW1A],
    };

    /// <summary>LoRA's up matrix; for LyCORIS the second factor's last key (for messages).</summary>
    public SafetensorsEntry Up => Kind switch
    {
        LoraKind.LoRA => Parts[LoraPart.Up],
        LoraKind.LoHa => Parts[LoraPart.HadaW2B],
        _ => Parts.GetValueOrDefault(LoraPart.LokrW2) ?? Parts[LoraPart.LokrW2B],
    };

    /// <summary>
    /// The rank alpha is divided by: LoRA's down rows, LoHa's hada_w1_b rows; LoKr's lokr_w2_b (else lokr_w1_b) rows, or
    /// null when neither factor is decomposed (A1111's network_lokr then applies no alpha scaling).
    /// </summary>
    public long? Rank => Kind switch
    {
        LoraKind.LoRA => Parts[LoraPart.Down].Shape[0],
        LoraKind.LoHa => Parts[LoraPart.HadaW1B].Shape[0],
        _ => Parts.GetValueOrDefault(LoraPart.LokrW2B)?.Shape[0] ?? Parts.GetValueOrDefault(LoraPart.LokrW1B)?.Shape[0],
    };

    /// <summary>alpha / rank, as kohya, diffusers and A1111 scale the change (1 when there is no alpha or, for LoKr, no rank).</summary>
    public float Scale => Kind == LoraKind.LoRA
        ? (Alpha ?? Rank!.Value) / Rank!.Value
        : Alpha is { } a && Rank is { } r ? a / r : 1f;
}

/// <summary>
/// A LoRA <c>.safetensors</c> file read and checked: every key parsed (<see cref="LoraKey"/>), grouped into down/up
/// pairs with their alphas, shapes checked against each other. Tensor data is read when merged.
/// </summary>
internal sealed class LoraFile : IDisposable
{
    private LoraFile(SafetensorsFile file, List<LoraLayer> layers)
    {
        File = file;
        Layers = layers;
    }

    /// <summary>The underlying file.</summary>
    public SafetensorsFile File { get; }

    /// <summary>The file path.</summary>
    public string Path => File.FilePath;

    /// <summary>The LoRA pairs.</summary>
    public IReadOnlyList<LoraLayer> Layers { get; }

    /// <summary>Opens and checks <paramref name="path"/>.</summary>
    public static LoraFile Open(string path)
    {
        var file = SafetensorsFile.Open(path);
        try
        {
            return new LoraFile(file, Group(file));
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static List<LoraLayer> Group(SafetensorsFile file)
    {
        var groups = new Dictionary<(string, string, bool), (Dictionary<LoraPart, SafetensorsEntry> Parts, LoraKey Key)>();
        // diffusers v0.31.0 decides a FLUX LoRA's format for the whole file: kohya's when any key has .lora_down.weight,
        // else XLabs' when any key has "processor".
        var kohya = file.Entries.Any(e => e.Name.Contains(".lora_down.weight", StringComparison.Ordinal));
        foreach (var entry in file.Entries)
        {
            var key = LoraKey.Parse(file.FilePath, entry.Name, kohya);
            var id = (key.Component, key.Module, key.Underscored);
            if (!groups.TryGetValue(id, out var g)) groups[id] = g = ([], key);
            // A zero-length side makes no change and would divide by zero where a LoKr factor's columns are counted.
            if (key.Part != LoraPart.Alpha && Array.IndexOf(entry.Shape, 0L) >= 0)
                throw new LoraException(file.FilePath, entry.Name, $"shape [{string.Join(", ", entry.Shape)}] has a zero-length dimension");
            if (g.Parts.TryGetValue(key.Part, out var previous))
                throw new LoraException(file.FilePath, entry.Name, $"module {key.Module} already has this part under key \"{previous.Name}\"");
            g.Parts[key.Part] = entry;
        }
        var layers = new List<LoraLayer>();
        foreach (var (parts, key) in groups.Values)
        {
            var any = parts.Values.First();
            var kind = Kind(file.FilePath, key, parts, any);
            float? alphaValue = null;
            if (parts.Remove(LoraPart.Alpha, out var alpha))
            {
                if (alpha.ElementCount != 1) throw new LoraException(file.FilePath, alpha.Name, $"alpha has shape [{string.Join(", ", alpha.Shape)}], not a scalar");
                alphaValue = file.ReadFloat32(alpha)[0];
                if (!float.IsFinite(alphaValue.Value)) throw new LoraException(file.FilePath, alpha.Name, $"alpha is {alphaValue}");
            }
            if (kind == LoraKind.LoRA) CheckShapes(file.FilePath, parts[LoraPart.Down], parts[LoraPart.Up]);
            else LycorisDelta.CheckShapes(file.FilePath, kind, parts);
            layers.Add(new LoraLayer(key with { Part = parts.Keys.Min() }, kind, parts, alphaValue));
        }
        if (layers.Count == 0) throw new LoraException(file.FilePath, null, "the file holds no LoRA weights");
        return layers;
    }

    // Which kind the module's keys make, or why they make none.
    private static LoraKind Kind(string path, LoraKey key, Dictionary<LoraPart, SafetensorsEntry> parts, SafetensorsEntry any)
    {
        bool Has(params LoraPart[] p) => p.Any(parts.ContainsKey);
        var lora = Has(LoraPart.Down, LoraPart.Up);
        var hada = Has(LoraPart.HadaW1A, LoraPart.HadaW1B, LoraPart.HadaW2A, LoraPart.HadaW2B);
        var lokr = Has(LoraPart.LokrW1, LoraPart.LokrW1A, LoraPart.LokrW1B, LoraPart.LokrW2, LoraPart.LokrW2A, LoraPart.LokrW2B);
        if ((lora ? 1 : 0) + (hada ? 1 : 0) + (lokr ? 1 : 0) > 1)
            throw new LoraException(path, any.Name, $"module {key.Module} mixes LoRA, LoHa and LoKr keys");
        if (hada)
            return parts.ContainsKey(LoraPart.HadaW1A) && parts.ContainsKey(LoraPart.HadaW1B) && parts.ContainsKey(LoraPart.HadaW2A) && parts.ContainsKey(LoraPart.HadaW2B)
                ? LoraKind.LoHa
                : throw new LoraException(path, any.Name, $"module {key.Module} is LoHa but lacks one of hada_w1_a, hada_w1_b, hada_w2_a, hada_w2_b");
        if (lokr)
        {
            var w1 = parts.ContainsKey(LoraPart.LokrW1) != (parts.ContainsKey(LoraPart.LokrW1A) && parts.ContainsKey(LoraPart.LokrW1B)) && parts.ContainsKey(LoraPart.LokrW1A) == parts.ContainsKey(LoraPart.LokrW1B);
            var w2 = parts.ContainsKey(LoraPart.LokrW2) != (parts.ContainsKey(LoraPart.LokrW2A) && parts.ContainsKey(LoraPart.LokrW2B)) && parts.ContainsKey(LoraPart.LokrW2A) == parts.ContainsKey(LoraPart.LokrW2B);
            return w1 && w2 ? LoraKind.LoKr
                : throw new LoraException(path, any.Name, $"module {key.Module} is LoKr but needs lokr_w1 or lokr_w1_a + lokr_w1_b, and lokr_w2 or lokr_w2_a + lokr_w2_b (one form each)");
        }
        if (!parts.ContainsKey(LoraPart.Down) || !parts.ContainsKey(LoraPart.Up))
            throw new LoraException(path, any.Name, $"module {key.Module} has {(!parts.ContainsKey(LoraPart.Down) ? "no down (lora_down/lora_A)" : "no up (lora_up/lora_B)")} matrix to pair with this key");
        return LoraKind.LoRA;
    }

    private static void CheckShapes(string path, SafetensorsEntry down, SafetensorsEntry up)
    {
        var d = down.Shape;
        var u = up.Shape;
        var linear = d.Length == 2 && u.Length == 2;
        var conv = d.Length == 4 && u.Length == 4 && u[2] == 1 && u[3] == 1;
        if (!linear && !conv)
            throw new LoraException(path, up.Name, $"down [{string.Join(", ", d)}] and up [{string.Join(", ", u)}] are neither a linear pair ([r, in], [out, r]) nor a LoCon conv pair ([r, in, kh, kw], [out, r, 1, 1])");
        if (d[0] != u[1] || d[0] == 0)
            throw new LoraException(path, up.Name, $"up [{string.Join(", ", u)}] does not take down [{string.Join(", ", d)}]'s rank {d[0]}");
    }

    /// <inheritdoc/>
    public void Dispose() => File.Dispose();
}
