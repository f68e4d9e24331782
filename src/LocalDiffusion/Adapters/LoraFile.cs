namespace LocalDiffusion.Adapters;

/// <summary>One module's LoRA pair in a file: its keys, and the alpha (null: alpha = rank).</summary>
/// <param name="Key">Component and module (the part is that of the down key).</param>
/// <param name="Down">The down (A) tensor's entry: [rank, in] or [rank, in, kh, kw].</param>
/// <param name="Up">The up (B) tensor's entry: [out, rank] or [out, rank, 1, 1].</param>
/// <param name="Alpha">The alpha value, when the file has one.</param>
internal sealed record LoraLayer(LoraKey Key, SafetensorsEntry Down, SafetensorsEntry Up, float? Alpha)
{
    /// <summary>The rank (the down matrix's first dimension).</summary>
    public long Rank => Down.Shape[0];

    /// <summary>alpha / rank, as kohya and diffusers scale the product.</summary>
    public float Scale => (Alpha ?? Rank) / Rank;
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
        var groups = new Dictionary<(string, string, bool), (SafetensorsEntry? Down, SafetensorsEntry? Up, SafetensorsEntry? Alpha, LoraKey Key)>();
        foreach (var entry in file.Entries)
        {
            var key = LoraKey.Parse(file.FilePath, entry.Name);
            var id = (key.Component, key.Module, key.Underscored);
            var g = groups.GetValueOrDefault(id, (null, null, null, key));
            SafetensorsEntry? previous = key.Part switch { LoraPart.Down => g.Down, LoraPart.Up => g.Up, _ => g.Alpha };
            if (previous is not null)
                throw new LoraException(file.FilePath, entry.Name, $"module {key.Module} already has this part under key \"{previous.Name}\"");
            g = key.Part switch
            {
                LoraPart.Down => g with { Down = entry, Key = key },
                LoraPart.Up => g with { Up = entry },
                _ => g with { Alpha = entry },
            };
            groups[id] = g;
        }
        var layers = new List<LoraLayer>();
        foreach (var (down, up, alpha, key) in groups.Values)
        {
            var any = (down ?? up ?? alpha)!;
            if (down is null || up is null)
                throw new LoraException(file.FilePath, any.Name, $"module {key.Module} has {(down is null ? "no down (lora_down/lora_A)" : "no up (lora_up/lora_B)")} matrix to pair with this key");
            CheckShapes(file.FilePath, down, up);
            float? alphaValue = null;
            if (alpha is not null)
            {
                if (alpha.ElementCount != 1) throw new LoraException(file.FilePath, alpha.Name, $"alpha has shape [{string.Join(", ", alpha.Shape)}], not a scalar");
                alphaValue = file.ReadFloat32(alpha)[0];
                if (!float.IsFinite(alphaValue.Value)) throw new LoraException(file.FilePath, alpha.Name, $"alpha is {alphaValue}");
            }
            layers.Add(new LoraLayer(key with { Part = LoraPart.Down }, down, up, alphaValue));
        }
        if (layers.Count == 0) throw new LoraException(file.FilePath, null, "the file holds no LoRA weights");
        return layers;
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
