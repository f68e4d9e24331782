using System.Numerics.Tensors;
using LocalDiffusion.Onnx;
using Microsoft.ML.OnnxRuntime;
using LocalDiffusion.Errors;
using LocalDiffusion.Tensors;

namespace LocalDiffusion.Vae;

/// <summary>
/// The VAE decoder: latents [1,C,h,w] (C = 4 for SD 1.x/2.x/XL, 16 for SD 3 and FLUX) → image [1,3,8h,8w] in about [-1, 1].
/// A TAESD decoder (<see cref="Tiny"/>) takes the denoiser's latents as they are (see <see cref="LatentScale"/>) and may
/// return [0, 1], which is mapped to [-1, 1] here, so that every caller sees the same pictures.
/// </summary>
internal sealed class VaeDecoder : IDisposable
{
    /// <summary>Pixels per latent along each side in every Stable Diffusion VAE.</summary>
    public const int Factor = 8;

    private readonly OnnxComponent _model;
    private readonly TensorSpec _latent;
    private readonly TensorSpec _image;

    /// <param name="model">The vae_decoder session.</param>
    /// <param name="latentChannels">The channels the model family's latents have.</param>
    /// <param name="tiny">What <see cref="TinyDecoderForm.Detect"/> found, when the decoder is a TAESD.</param>
    public VaeDecoder(OnnxComponent model, int latentChannels = Denoising.UNet.LatentChannels, TinyDecoderForm? tiny = null)
    {
        _model = model;
        LatentChannels = latentChannels;
        Tiny = tiny;
        // Exports of diffusers' AutoencoderTiny name the input latent_sample; madebyollin's own ONNX files name it otherwise;
        // Black Forest Labs' TensorRT release names it latent (its decoder, too, takes latents already unscaled).
        var latent = model.Inputs.TryGetValue("latent_sample", out var named) ? named
            : model.Inputs.TryGetValue("latent", out var bfl) ? bfl
            : tiny is not null && model.Inputs.Count == 1 ? model.Inputs.Values.First() : null;
        if (latent is not { Rank: 4 })
            throw new ModelLoadException(model.FilePath,
                $"this does not look like a VAE decoder: expected input 'latent_sample' (or 'latent') [batch,4,h,w]; found {model.DescribeInputs()}.");
        if (!OrtTensors.AcceptsFloats(latent.ElementType))
            throw new ModelLoadException(model.FilePath, $"input '{latent.Name}' has element type {latent.ElementType}; float32 or float16 was expected.");
        var declared = latent.FixedDimension(1) ?? tiny?.ConfigLatentChannels;
        if (declared is { } channels && channels != latentChannels)
            throw OtherChannels(model.FilePath, tiny, channels, latentChannels, $"{latent.Name} {latent.Describe()}");
        _latent = latent;
        _image = model.OutputOrFirst("sample");
        if (_image.Rank != 4)
            throw new ModelLoadException(model.FilePath, $"expected output 'sample' (or 'images') [batch,3,H,W]; found {model.DescribeOutputs()}.");
        OrtTensors.RequireFloatOutput(_image, model.FilePath);
    }

    /// <summary>
    /// Refuses, before its session opens, a TAESD whose config.json states other latent channels than the model's; a
    /// decoder without that statement is checked by its graph when it opens.
    /// </summary>
    public static void CheckDeclaredChannels(string path, TinyDecoderForm? tiny, int latentChannels)
    {
        if (tiny?.ConfigLatentChannels is { } channels && channels != latentChannels)
            throw OtherChannels(path, tiny, channels, latentChannels, "config.json's latent_channels");
    }

    private static ModelLoadException OtherChannels(string path, TinyDecoderForm? tiny, long channels, int latentChannels, string evidence) =>
        new(path, tiny is not null
            ? $"this TAESD decoder takes {channels} latent channels ({evidence}); this model's latents have {latentChannels} " +
              "(TAESD and TAESDXL decode 4, for Stable Diffusion 1.x/2.x and XL; TAESD3 and TAEF1 decode 16, for SD 3 and FLUX): it belongs to another model family."
            : $"this VAE decoder takes {channels} latent channels ({evidence}); this model's latents have {latentChannels} " +
              "(Stable Diffusion 1.x/2.x/XL: 4; SD 3 and FLUX: 16): the VAE belongs to another model family.");

    /// <summary>Channels of the latents it decodes.</summary>
    public int LatentChannels { get; }

    /// <summary>The TAESD form, when this is a tiny autoencoder's decoder; null for a full VAE.</summary>
    public TinyDecoderForm? Tiny { get; }

    /// <summary>"TAESD" or "VAE", for messages and <c>ModelInfo</c>.</summary>
    public string Kind => Tiny is null ? "VAE" : "TAESD";

    /// <summary>
    /// The scaling factor and shift factor to decode a family's latents with: the family's for a full VAE
    /// (x / scaling + shift), none for a TAESD, which was trained on the denoiser's latents themselves.
    /// </summary>
    public (float Scaling, float Shift) LatentScale(float scalingFactor, float shiftFactor = 0f) =>
        Tiny is null ? (scalingFactor, shiftFactor) : (1f, 0f);

    /// <summary>The model.onnx path.</summary>
    public string FilePath => _model.FilePath;

    /// <summary>
    /// Whether the decoder computes in float16 somewhere: float16 input or output, or float16 weights (an fp16 export
    /// that keeps float32 I/O). Such a decoder can overflow where a float32 one does not.
    /// </summary>
    public bool IsFloat16 => _latent.ElementType == Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float16
        || _image.ElementType == Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float16
        || _model.Scan?.HasFloat16Weights == true;

    /// <summary>"float16" or "float32", for messages and <c>ModelInfo</c>.</summary>
    public string Precision => IsFloat16 ? "float16" : "float32";
    /// <summary>When and how to decode in tiles; a VAE with static spatial dimensions never tiles.</summary>
    /// <exception cref="ArgumentException">A tile under 1 latent or an overlap outside [0, 1), naming the field.</exception>
    public VaeTilingOptions Tiling
    {
        get => _tiling;
        init
        {
            ArgumentNullException.ThrowIfNull(value);
            if (value.TileLatentSize < 1)
                throw new InvalidRequestException(nameof(VaeTilingOptions.TileLatentSize), value.TileLatentSize, null, "VaeTiling.TileLatentSize must be at least 1 latent (8 pixels).");
            if (!(value.Overlap >= 0 && value.Overlap < 1))
                throw new InvalidRequestException(nameof(VaeTilingOptions.Overlap), value.Overlap, null, "VaeTiling.Overlap must be in [0, 1).");
            _tiling = value;
        }
    }

    private readonly VaeTilingOptions _tiling = new();

    public TensorSpec LatentSpec => _latent;

    public TensorSpec ImageSpec => _image;

    /// <summary>Latent height/width the model is fixed to, or null when dynamic.</summary>
    public (int Height, int Width)? FixedLatentSize =>
        _latent.FixedDimension(2) is { } h && _latent.FixedDimension(3) is { } w ? ((int)h, (int)w) : null;

    /// <summary>
    /// Decodes one image's latents (already divided by the scaling factor) into CHW floats. Images are decoded
    /// one at a time: the decoder's activations at full resolution dominate memory.
    /// </summary>
    public float[] Decode(ReadOnlySpan<float> latents, int latentHeight, int latentWidth, RunOptions runOptions)
    {
        var item = LatentChannels * latentHeight * latentWidth;
        if (FixedLatentSize is null && TiledVaeDecoder.Applies(Tiling, latentHeight, latentWidth))
            return TiledVaeDecoder.Decode(latents[..item], latentHeight, latentWidth, Tiling,
                (tile, h, w) => DecodeWhole(tile, h, w, runOptions), CancellationToken.None);
        return DecodeWhole(latents, latentHeight, latentWidth, runOptions);
    }

    private float[] DecodeWhole(ReadOnlySpan<float> latents, int latentHeight, int latentWidth, RunOptions runOptions)
    {
        long[] shape = [_latent.FixedDimension(0) ?? 1, LatentChannels, latentHeight, latentWidth];
        var item = LatentChannels * latentHeight * latentWidth;
        OrtValue input;
        if (shape[0] == 1)
        {
            input = OrtTensors.FromFloats(_latent, latents[..item], shape);
        }
        else
        {
            var padded = new float[shape[0] * item];
            new BatchChunk(0, 1, (int)shape[0]).Gather(latents[..item], item, padded);
            input = OrtTensors.FromFloats(_latent, padded, shape);
        }
        using (input)
        {
            using var outputs = _model.Run(runOptions, [_latent.Name], [input], [_image.Name]);
            var outShape = OrtTensors.Shape(outputs[0]);
            var all = new float[TensorShape.ArrayLength(outShape)];
            OrtTensors.ReadFloats(outputs[0], all);
            var imageSize = (int)(outShape[1] * outShape[2] * outShape[3]);
            if (outShape[1] != 3 || outShape[2] != latentHeight * Factor || outShape[3] != latentWidth * Factor)
                throw new ModelLoadException(_model.FilePath,
                    $"the {Kind} decoder returned shape [{string.Join(",", outShape)}]; [1,3,{latentHeight * Factor},{latentWidth * Factor}] was expected.");
            var image = all.Length == imageSize ? all : all[..imageSize];
            // madebyollin's TAESD returns [0, 1]; x·2 − 1 is diffusers' own mapping (DecoderTiny.forward).
            if (Tiny?.Range == TinyDecoderRange.ZeroToOne)
            {
                TensorPrimitives.Multiply(image, 2f, image);
                TensorPrimitives.Add(image, -1f, image);
            }
            return image;
        }
    }

    /// <summary>Holds the session open for a stage of several calls (see <see cref="OnnxComponent.Use"/>).</summary>
    public OnnxComponent.Lease Use() => _model.Use();

    /// <summary>The session.</summary>
    internal OnnxComponent Component => _model;

    /// <summary>Whether the session is open now (see <see cref="PipelineOptions.LowMemory"/>).</summary>
    public bool IsLoaded => _model.IsLoaded;

    public void Dispose() => _model.Dispose();
}
