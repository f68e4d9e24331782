using System.Text.Json;
using LocalDiffusion.Onnx;
using LocalDiffusion.Onnx.Rewriting;

namespace LocalDiffusion.Vae;

/// <summary>What a TAESD decoder returns: diffusers' AutoencoderTiny maps its pictures to [-1, 1]; madebyollin's own decoder returns [0, 1].</summary>
internal enum TinyDecoderRange
{
    /// <summary>[-1, 1], as every VAE decoder (diffusers' <c>AutoencoderTiny.decode</c>, exported by optimum or diffusers).</summary>
    MinusOneToOne,

    /// <summary>[0, 1]: madebyollin's <c>taesd_decoder.onnx</c> form (the network alone, ending in its last convolution).</summary>
    ZeroToOne,
}

/// <summary>
/// A TAESD decoder (the tiny autoencoder: TAESD, TAESDXL, TAESD3, TAEF1), recognised by its config.json
/// (<c>"_class_name": "AutoencoderTiny"</c>) or by its graph: the latent clamp tanh(x/3)·3 on its input, which no
/// AutoencoderKL decoder has. A TAESD decodes the denoiser's own latents (diffusers' AutoencoderTiny has scaling_factor
/// 1.0 and shift_factor 0; ComfyUI undoes the VAE's scale and shift before calling it), so the engine hands it the
/// latents unscaled and unshifted, and maps a [0, 1] picture to [-1, 1].
/// </summary>
/// <param name="Range">What its output covers.</param>
/// <param name="ConfigLatentChannels">config.json's <c>latent_channels</c>, when it states it.</param>
/// <param name="Evidence">How it was recognised, for messages.</param>
internal sealed record TinyDecoderForm(TinyDecoderRange Range, int? ConfigLatentChannels, string Evidence)
{
    /// <summary>
    /// A real TAESD decoder is about 5 MB (1.2 M parameters in float32); AutoencoderKL decoders are 50–200 MB. Graphs
    /// larger than this are not read: they are not TAESDs (unless their config.json says so).
    /// </summary>
    public const long MaxGraphBytes = 64L << 20;

    /// <summary>
    /// Recognises the decoder <paramref name="modelPath"/> (with the config.json <paramref name="configPath"/>, if any) as
    /// a TAESD; null for any other decoder.
    /// </summary>
    /// <exception cref="ModelLoadException">
    /// A TAESD whose output range cannot be told (its graph ends in neither its last convolution nor diffusers' x·2 − 1).
    /// </exception>
    public static TinyDecoderForm? Detect(string modelPath, string? configPath)
    {
        var (className, channels) = ReadConfig(configPath);
        var configSays = className == "AutoencoderTiny";
        var file = new FileInfo(modelPath);
        var graph = file.Exists && file.Length <= MaxGraphBytes ? TryParse(modelPath) : null;
        var clamp = graph is not null && HasLatentClamp(graph);
        if (!configSays && !clamp) return null;
        var evidence = configSays ? $"{configPath} says AutoencoderTiny" : "its graph begins with TAESD's latent clamp tanh(x/3)·3";
        var range = graph is null ? (TinyDecoderRange?)null : OutputRange(graph);
        if (range is null && !configSays)
            throw new ModelLoadException(modelPath,
                "this looks like a TAESD decoder (its input goes through tanh(x/3)·3), but its output is neither its last convolution ([0, 1], madebyollin's form) nor x·2 − 1 ([-1, 1], diffusers' AutoencoderTiny.decode): the engine cannot tell how to read its pixels. Export it with diffusers' AutoencoderTiny.decode, or add config.json with \"_class_name\": \"AutoencoderTiny\".");
        // diffusers' AutoencoderTiny.decode returns [-1, 1]; a config.json from diffusers comes with that export.
        return new TinyDecoderForm(range ?? TinyDecoderRange.MinusOneToOne, channels, evidence);
    }

    private static (string? ClassName, int? LatentChannels) ReadConfig(string? configPath)
    {
        if (configPath is null || !File.Exists(configPath)) return (null, null);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(configPath));
            if (doc.RootElement.ValueKind != JsonValueKind.Object) return (null, null);
            var root = doc.RootElement;
            var name = root.TryGetProperty("_class_name", out var n) && n.ValueKind == JsonValueKind.String ? n.GetString() : null;
            int? channels = root.TryGetProperty("latent_channels", out var c) && c.ValueKind == JsonValueKind.Number && c.TryGetInt32(out var v) ? v : null;
            return (name, channels);
        }
        catch (JsonException e)
        {
            throw new ModelLoadException(configPath, $"config.json is not valid JSON: {e.Message}", e);
        }
    }

    private static OnnxGraph? TryParse(string path)
    {
        try
        {
            return OnnxGraph.Parse(File.ReadAllBytes(path));
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or ArgumentException or IndexOutOfRangeException or OverflowException)
        {
            return null; // not readable protobuf: ONNX Runtime names the file when it refuses it
        }
    }

    // From the graph input through at most three Cast/Div/Mul nodes to a Tanh: torch exports tanh(x / 3) * 3 as Div, Tanh, Mul.
    private static bool HasLatentClamp(OnnxGraph graph)
    {
        var inputs = graph.Inputs.Where(i => !graph.Initializers.ContainsKey(i)).ToList();
        if (inputs.Count != 1) return false;
        var frontier = new List<string> { inputs[0] };
        for (var depth = 0; depth < 3 && frontier.Count > 0; depth++)
        {
            var next = new List<string>();
            foreach (var node in graph.Nodes)
            {
                if (!node.Inputs.Any(frontier.Contains)) continue;
                if (node.OpType == "Tanh") return true;
                if (node.OpType is "Cast" or "Div" or "Mul") next.AddRange(node.Outputs);
            }
            frontier = next;
        }
        return false;
    }

    // The node that makes the first output, through Casts: diffusers' x.mul(2).sub(1) ends in Sub (or Add of −1); the bare
    // network ends in its last Conv.
    private static TinyDecoderRange? OutputRange(OnnxGraph graph)
    {
        if (graph.Outputs.Count == 0) return null;
        var value = graph.Outputs[0];
        for (var hops = 0; hops < 4; hops++)
        {
            var producer = graph.Nodes.FirstOrDefault(n => n.Outputs.Contains(value));
            switch (producer?.OpType)
            {
                case "Cast" when producer.Inputs.Length > 0:
                    value = producer.Inputs[0];
                    continue;
                case "Sub" or "Add":
                    return TinyDecoderRange.MinusOneToOne;
                case "Conv":
                    return TinyDecoderRange.ZeroToOne;
                default:
                    return null;
            }
        }
        return null;
    }
}
