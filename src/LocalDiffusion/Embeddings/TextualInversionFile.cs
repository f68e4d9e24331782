using LocalDiffusion.Adapters;

namespace LocalDiffusion.Embeddings;

/// <summary>
/// Reads textual-inversion files in the forms people share them, as AUTOMATIC1111's
/// <c>create_embedding_from_data</c> tells them apart: a dict with <c>string_to_param</c> (A1111's own <c>.pt</c>, one
/// entry); a dict with <c>clip_l</c> and <c>clip_g</c> (SDXL); a dict of exactly one tensor (diffusers'
/// <c>learned_embeds</c> with the token as its key, kohya's <c>emb_params</c>). <c>.pt</c>/<c>.bin</c> are torch.save zips
/// (<see cref="TorchZipFile"/>), <c>.safetensors</c> are read by <see cref="SafetensorsFile"/>; a 1-D tensor is one vector.
/// </summary>
public static class TextualInversionFile
{
    /// <summary>The extensions read (A1111 also reads embeddings hidden in PNG/WebP images; those are not).</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".pt", ".bin", ".safetensors"];

    /// <summary>More vectors than this cannot fit A1111's 75-token chunk with the rest of a prompt.</summary>
    public const int MaxVectors = 75;

    /// <summary>Reads and checks <paramref name="path"/>.</summary>
    /// <exception cref="TextualInversionException">An unknown format, a damaged file, or tensors that are not a set of vectors.</exception>
    /// <exception cref="SafetensorsException">A malformed .safetensors file (naming the file, key and offset).</exception>
    public static TextualInversion Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var extension = Path.GetExtension(path).ToLowerInvariant();
        if (!Extensions.Contains(extension))
            throw new TextualInversionException(path, null, null, $"unknown embedding format \"{extension}\": expected .pt or .bin (torch.save) or .safetensors");
        if (!File.Exists(path)) throw new TextualInversionException(path, null, null, "file not found");
        var name = Path.GetFileNameWithoutExtension(path);
        return extension == ".safetensors" ? FromSafetensors(path, name) : FromTorch(path, name);
    }

    private static TextualInversion FromSafetensors(string path, string name)
    {
        using var file = SafetensorsFile.Open(path);
        var keys = file.Entries.Select(e => e.Name).ToList();
        if (file.Find(TextualInversion.ClipL) is { } l && file.Find(TextualInversion.ClipG) is { } g)
            return Build(path, name, [(TextualInversion.ClipL, TextualInversion.ClipL, l.Shape, file.ReadFloat32(l)),
                (TextualInversion.ClipG, TextualInversion.ClipG, g.Shape, file.ReadFloat32(g))], null);
        if (keys.Count != 1)
            throw new TextualInversionException(path, null, null,
                $"not an embedding: expected one tensor (emb_params, or a token as diffusers saves it) or clip_l and clip_g; the file has {keys.Count} ({string.Join(", ", keys.Take(8))})");
        var entry = file.Entries.First();
        return Build(path, name, [(TextualInversion.Single, entry.Name, entry.Shape, file.ReadFloat32(entry))], null);
    }

    private static TextualInversion FromTorch(string path, string name)
    {
        var zip = TorchZipFile.Open(path);
        if (zip.Root is not PickleDict root)
            throw new TextualInversionException(path, null, null, $"the saved object is {TorchPickle.Describe(zip.Root)}, not a dict of embedding tensors");
        (string, string, long[], float[]) Read(string key, string source, object? value) =>
            value is TorchTensor t ? (key, source, t.Shape, zip.ReadFloat32(t, source))
            : throw new TextualInversionException(path, source, null, $"expected a tensor, found {TorchPickle.Describe(value)}");

        if (root.TryGet("string_to_param", out var parameters))
        {
            // Older files hold a torch.nn.ParameterDict, whose entries live in its _parameters.
            if (parameters is PickleObject { State: PickleDict state } && state.TryGet("_parameters", out var inner)) parameters = inner;
            if (parameters is not PickleDict dict || dict.Items.Count != 1)
                throw new TextualInversionException(path, "string_to_param", null,
                    $"expected a dict of exactly one tensor (A1111's embedding format), found {TorchPickle.Describe(parameters)}");
            var (key, value) = (dict.Items[0].Key, dict.Items[0].Value);
            return Build(path, name, [Read(TextualInversion.Single, $"string_to_param.{key}", value)], root);
        }
        if (root.TryGet(TextualInversion.ClipL, out var cl) && root.TryGet(TextualInversion.ClipG, out var cg))
            return Build(path, name, [Read(TextualInversion.ClipL, TextualInversion.ClipL, cl), Read(TextualInversion.ClipG, TextualInversion.ClipG, cg)], root);
        var tensors = root.Items.Where(i => i.Value is TorchTensor).ToList();
        if (root.Items.Count != 1 || tensors.Count != 1)
            throw new TextualInversionException(path, null, null,
                $"not an embedding: expected string_to_param (A1111), clip_l and clip_g (SDXL) or one tensor (diffusers); the dict has {string.Join(", ", root.Items.Take(8).Select(i => i.Key?.ToString()))}");
        return Build(path, name, [Read(TextualInversion.Single, tensors[0].Key?.ToString() ?? "None", tensors[0].Value)], null);
    }

    private static TextualInversion Build(string path, string name, (string Key, string Source, long[] Shape, float[] Values)[] sets, PickleDict? info)
    {
        var count = -1;
        foreach (var (_, source, shape, values) in sets)
        {
            if (shape.Length is not (1 or 2) || shape[^1] < 1 || (shape.Length == 2 && shape[0] < 1))
                throw new TextualInversionException(path, source, null, $"the tensor's shape [{string.Join(", ", shape)}] is not [vectors, width] or [width]");
            var rows = shape.Length == 1 ? 1 : (int)shape[0];
            if (rows > MaxVectors)
                throw new TextualInversionException(path, source, null, $"{rows} vectors are more than the {MaxVectors} tokens a prompt chunk holds");
            if (count >= 0 && rows != count)
                throw new TextualInversionException(path, source, null, $"{rows} vectors, but the file's other set has {count}: clip_l and clip_g must stand for the same tokens");
            count = rows;
            if (!System.Numerics.Tensors.TensorPrimitives.IsFiniteAll<float>(values))
                throw new TextualInversionException(path, source, null, "the vectors hold NaN or infinity");
        }
        return new TextualInversion
        {
            FilePath = path, Name = name, VectorCount = count,
            Vectors = sets.ToDictionary(s => s.Key, s => s.Values, StringComparer.Ordinal),
            SourceKeys = sets.ToDictionary(s => s.Key, s => s.Source, StringComparer.Ordinal),
            Step = info is not null && info.TryGet("step", out var step) && step is long s ? s : null,
            SdCheckpoint = info is not null && info.TryGet("sd_checkpoint", out var hash) ? hash as string : null,
            SdCheckpointName = info is not null && info.TryGet("sd_checkpoint_name", out var checkpoint) ? checkpoint as string : null,
        };
    }
}
