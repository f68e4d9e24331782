using System.Numerics.Tensors;
using LocalDiffusion.Imaging;
using LocalDiffusion.Model;
using LocalDiffusion.Onnx;
using LocalDiffusion.Vae;
using Microsoft.ML.OnnxRuntime;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Decoding;

/// <summary>
/// A VAE or TAESD decoder on its own: a denoiser's latents → pictures, exactly as a pipeline decodes them (a full VAE
/// divides by the scaling factor and adds the shift; a TAESD takes the latents as they are and its [0, 1] output is mapped
/// to [-1, 1]). For decoding saved latents, and for <c>localdiffusion bench decode</c>.
/// </summary>
public sealed class LatentDecoder : IDisposable
{
    private readonly VaeDecoder _decoder;
    private readonly float _scaling, _shift;

    private LatentDecoder(VaeDecoder decoder, float scaling, float shift) => (_decoder, _scaling, _shift) = (decoder, scaling, shift);

    /// <summary>The decoder's .onnx file.</summary>
    public string FilePath => _decoder.FilePath;

    /// <summary>"TAESD" for a tiny autoencoder, "VAE" for a full one.</summary>
    public string Kind => _decoder.Kind;

    /// <summary>Channels of the latents it decodes.</summary>
    public int LatentChannels => _decoder.LatentChannels;

    /// <summary>
    /// Opens the decoder <paramref name="path"/> names (any form <see cref="PipelineOptions.VaeDecoderPath"/> takes). A full
    /// VAE's latents are divided by its config.json's <c>scaling_factor</c>, else by <paramref name="scalingFactor"/>, and
    /// shifted by <paramref name="shiftFactor"/>; a TAESD's are not.
    /// </summary>
    /// <exception cref="ModelLoadException">The file is missing or not a decoder of <paramref name="latentChannels"/> channels.</exception>
    public static LatentDecoder Open(string path, int latentChannels = 4, float scalingFactor = 0.18215f, float shiftFactor = 0f, PipelineOptions? options = null)
    {
        options ??= new PipelineOptions();
        var device = options.Validate();
        var file = VaeDecoderFile.Open(path);
        var sessions = new SessionFactory(device, options.IntraOpThreads, options.InterOpThreads)
        {
            Cache = options.UseModelCache ? new ModelCache(options.CacheDirectory ?? ModelCache.DefaultDirectory) : null,
            Options = options,
        };
        var component = OnnxComponent.Load("vae_decoder", file.ModelPath, sessions);
        try
        {
            var decoder = new VaeDecoder(component, latentChannels, file.Tiny) { Tiling = options.VaeTiling };
            var (scaling, shift) = decoder.LatentScale(file.ScalingFactor ?? scalingFactor, shiftFactor);
            return new LatentDecoder(decoder, scaling, shift);
        }
        catch
        {
            component.Dispose();
            throw;
        }
    }

    /// <summary>Decodes one image's latents [<see cref="LatentChannels"/>, h, w] into an RGB picture.</summary>
    /// <exception cref="ArgumentException">The latents are not C·h·w values.</exception>
    /// <exception cref="GenerationNumericsException">The decoder returned NaN or infinity.</exception>
    public Task<GeneratedImage> DecodeAsync(ReadOnlyMemory<float> latents, int latentHeight, int latentWidth, CancellationToken cancellationToken = default)
    {
        if (latentHeight < 1 || latentWidth < 1 || latents.Length != LatentChannels * latentHeight * latentWidth)
            throw new InvalidRequestException(nameof(latents), null, null, called => $"{called} has {latents.Length} values; [{LatentChannels},{latentHeight},{latentWidth}] = {LatentChannels * latentHeight * latentWidth} are needed.");
        return Task.Run(() =>
        {
            using var runOptions = new RunOptions();
            using var terminate = cancellationToken.Register(() => runOptions.Terminate = true);
            var scaled = new float[latents.Length];
            TensorPrimitives.Divide(latents.Span, _scaling, scaled);
            TensorPrimitives.Add(scaled, _shift, scaled);
            try
            {
                var pixels = _decoder.Decode(scaled, latentHeight, latentWidth, runOptions);
                int width = latentWidth * VaeDecoder.Factor, height = latentHeight * VaeDecoder.Factor;
                return new GeneratedImage(width, height, ImageConversion.ToRgb8(pixels, width, height, FilePath));
            }
            catch (OnnxRuntimeException) when (cancellationToken.IsCancellationRequested)
            {
                throw new OperationCanceledException(cancellationToken);
            }
        }, cancellationToken);
    }

    /// <inheritdoc/>
    public void Dispose() => _decoder.Dispose();
}
