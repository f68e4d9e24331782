using LocalDiffusion.Onnx;
using LocalDiffusion.Randomness;
using Microsoft.ML.OnnxRuntime;
using LocalDiffusion.Tensors;

namespace LocalDiffusion.Vae;

/// <summary>
/// The VAE encoder: image [1,3,8h,8w] in [−1, 1] → latents [1,4,h,w] (unscaled). Exports return either
/// <c>latent_parameters</c> [1,8,h,w] (mean and log-variance; optimum ≥ 1.23), sampled here as diffusers'
/// <c>DiagonalGaussianDistribution.sample</c> does with the generation's generator, or <c>latent_sample</c> [1,4,h,w]
/// (the diffusers conversion script), used as it is without drawing.
/// </summary>
internal sealed class VaeEncoder : IDisposable
{
    private readonly OnnxComponent _model;
    private readonly TensorSpec _image;
    private readonly TensorSpec _output;
    private readonly bool _parameters;

    /// <param name="model">The vae_encoder session.</param>
    /// <param name="latentChannels">The channels the model family's latents have (4; SD 3 and FLUX 16).</param>
    public VaeEncoder(OnnxComponent model, int latentChannels = Denoising.UNet.LatentChannels)
    {
        _model = model;
        LatentChannels = latentChannels;
        if (!model.Inputs.TryGetValue("sample", out var image) || image.Rank != 4)
            throw new ModelLoadException(model.FilePath,
                $"this does not look like a VAE encoder: expected input 'sample' [batch,3,H,W]; found {model.DescribeInputs()}.");
        _image = image;
        if (model.Outputs.TryGetValue("latent_parameters", out var parameters))
            (_output, _parameters) = (parameters, true);
        else if (model.Outputs.TryGetValue("latent_sample", out var sample))
            (_output, _parameters) = (sample, false);
        else
            throw new ModelLoadException(model.FilePath,
                $"expected output 'latent_parameters' [batch,8,h,w] or 'latent_sample' [batch,4,h,w]; found {model.DescribeOutputs()}.");
    }

    /// <summary>Latent height/width the model is fixed to, or null when dynamic.</summary>
    public (int Height, int Width)? FixedLatentSize =>
        _image.FixedDimension(2) is { } h && _image.FixedDimension(3) is { } w ? ((int)h / VaeDecoder.Factor, (int)w / VaeDecoder.Factor) : null;

    /// <summary>Channels of the latents it makes.</summary>
    public int LatentChannels { get; }

    /// <summary>Whether <see cref="Encode"/> draws from the generator (a <c>latent_parameters</c> export).</summary>
    public bool DrawsFromGenerator => _parameters;

    /// <summary>The file, for messages.</summary>
    public string FilePath => _model.FilePath;

    /// <summary>
    /// Encodes one image (CHW in [−1, 1]) to latents [4,h,w], unscaled: mean + exp(½·clamp(logvar, −30, 20))·z with z drawn
    /// from <paramref name="generator"/> for a <c>latent_parameters</c> export, the output itself for a <c>latent_sample</c> one.
    /// </summary>
    public float[] Encode(ReadOnlySpan<float> chw, int latentHeight, int latentWidth, TorchGenerator generator, RunOptions runOptions)
    {
        int height = latentHeight * VaeDecoder.Factor, width = latentWidth * VaeDecoder.Factor;
        long batch = _image.FixedDimension(0) ?? 1;
        var item = 3 * height * width;
        var input = new float[batch * item];
        for (var b = 0; b < batch; b++)
            chw[..item].CopyTo(input.AsSpan(b * item));
        using var tensor = OrtTensors.FromFloats(_image, input, [batch, 3, height, width]);
        using var outputs = _model.Run(runOptions, [_image.Name], [tensor], [_output.Name]);
        var shape = OrtTensors.Shape(outputs[0]);
        var channels = _parameters ? 2 * LatentChannels : LatentChannels;
        if (shape.Length != 4 || shape[1] != channels || shape[2] != latentHeight || shape[3] != latentWidth)
            throw new InvalidOperationException(
                $"{_model.FilePath}: the VAE encoder returned [{string.Join(",", shape)}]; [{batch},{channels},{latentHeight},{latentWidth}] was expected.");
        var all = new float[TensorShape.ArrayLength(shape)];
        OrtTensors.ReadFloats(outputs[0], all);
        var plane = LatentChannels * latentHeight * latentWidth;
        if (!_parameters)
            return all[..plane];

        var latents = new float[plane];
        generator.FillNormal(latents);
        for (var k = 0; k < plane; k++)
        {
            var logVariance = Math.Clamp(all[plane + k], -30f, 20f);
            latents[k] = all[k] + MathF.Exp(0.5f * logVariance) * latents[k];
        }
        return latents;
    }

    /// <summary>Holds the session open for a stage of several calls (see <see cref="OnnxComponent.Use"/>).</summary>
    public OnnxComponent.Lease Use() => _model.Use();

    /// <summary>The session.</summary>
    internal OnnxComponent Component => _model;

    /// <summary>Whether the session is open now (see <see cref="PipelineOptions.LowMemory"/>).</summary>
    public bool IsLoaded => _model.IsLoaded;

    public void Dispose() => _model.Dispose();
}
