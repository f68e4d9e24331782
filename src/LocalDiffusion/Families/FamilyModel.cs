using LocalDiffusion.Model;
using LocalDiffusion.Onnx;
using LocalDiffusion.Schedulers;
using LocalDiffusion.Vae;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Families;

/// <summary>The conditioning a family's conditioner makes: hidden states [rows,L,D] and pooled vectors [rows,P], one row per prompt.</summary>
internal sealed record FamilyConditioning(float[] Hidden, int SequenceLength, int Width, float[] Pooled, int PooledWidth, int Rows);

/// <summary>
/// An opened model of some family: its conditioner (<see cref="Encode"/>), its denoiser adapter (<see cref="Predict"/>:
/// its ONNX inputs and outputs, latent packing), its latent format, its guidance and its defaults. The
/// <see cref="FamilyPipeline"/> orchestrates these without knowing the family.
/// </summary>
internal abstract class FamilyModel : IDisposable
{
    /// <summary>The family's name and variant, e.g. "SD 3" or "FLUX.1-dev".</summary>
    public abstract string Name { get; }

    /// <summary>What the family's model cards recommend, as a request's defaults.</summary>
    public required FamilyDefaults Defaults { get; init; }

    /// <summary>Latent channels, VAE scaling and shift.</summary>
    public required LatentFormat Latents { get; init; }

    /// <summary>How the guidance scale is applied.</summary>
    public abstract GuidanceMode Guidance { get; }

    /// <summary>The VAE decoder (latents / scaling + shift → pixels), or a TAESD3/TAEF1 (the latents as they are).</summary>
    public required VaeDecoder Decoder { get; init; }

    /// <summary>The decoder of live previews when it is not <see cref="Decoder"/> (a TAESD); null: <see cref="Decoder"/>.</summary>
    public VaeDecoder? PreviewDecoder { get; init; }

    /// <summary>The VAE encoder for img2img, when the folder has one.</summary>
    public VaeEncoder? Encoder { get; init; }

    /// <summary>The folder's scheduler config.</summary>
    public required SchedulerConfig SchedulerConfig { get; init; }

    /// <summary>Every ONNX component opened, for <see cref="ModelInfo.Components"/> and disposal.</summary>
    public required IReadOnlyList<OnnxComponent> Components { get; init; }

    /// <summary>The components a LoRA may change (the transformer and the CLIP encoders; not T5), named as LoRA keys name them.</summary>
    public IReadOnlyList<OnnxComponent> LoraComponents { get; init; } = [];

    /// <summary>The T5 encoder's component name (<c>text_encoder_3</c> in SD 3, <c>text_encoder_2</c> in FLUX): LoRAs for it are refused.</summary>
    public string? T5Component { get; init; }

    /// <summary>The CLIP tokenizer's vocabulary size, for <see cref="ModelInfo"/>.</summary>
    public int TokenizerVocabularySize { get; init; }

    /// <summary>Image sides must be multiples of this (the VAE's 8 × the transformer's 2×2 patches).</summary>
    public virtual int SizeMultiple => VaeDecoder.Factor * 2;

    /// <summary>
    /// Encodes <paramref name="prompts"/> (one row each, in order) with at most <paramref name="maxSequenceLength"/> T5 tokens.
    /// </summary>
    public abstract FamilyConditioning Encode(IReadOnlyList<string> prompts, int maxSequenceLength, RunOptions runOptions);

    /// <summary>
    /// The denoiser on <paramref name="rows"/> rows of latents [rows,C,h,w] at scheduler timestep <paramref name="timestep"/>
    /// with conditioning rows <paramref name="conditioning"/>: writes its prediction [rows,C,h,w] into <paramref name="output"/>.
    /// </summary>
    public abstract void Predict(ReadOnlyMemory<float> latents, int rows, int latentHeight, int latentWidth, float timestep, float guidance,
        FamilyConditioning conditioning, Span<float> output, RunOptions runOptions);

    /// <summary>Sets the schedule for an image of <paramref name="latentHeight"/>×<paramref name="latentWidth"/> latents.</summary>
    public abstract void SetTimesteps(IFlowMatchScheduler scheduler, int steps, int latentHeight, int latentWidth);

    public void Dispose()
    {
        foreach (var component in Components) component.Dispose();
    }
}

/// <summary>A family's recommended request values.</summary>
/// <param name="Steps">Denoising steps.</param>
/// <param name="GuidanceScale">Guidance scale.</param>
/// <param name="Width">Native width in pixels.</param>
/// <param name="Height">Native height in pixels.</param>
/// <param name="MaxSequenceLength">T5 tokens the conditioner reads by default.</param>
internal sealed record FamilyDefaults(int Steps, float GuidanceScale, int Width, int Height, int MaxSequenceLength);

/// <summary>The latent space: channels, and how the VAE's latents are scaled and shifted (x_vae = x / scaling + shift).</summary>
internal sealed record LatentFormat(int Channels, float ScalingFactor, float ShiftFactor);
