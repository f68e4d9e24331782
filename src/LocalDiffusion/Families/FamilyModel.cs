using LocalDiffusion.Denoising;
using LocalDiffusion.Latents;
using LocalDiffusion.Model;
using LocalDiffusion.Onnx;
using LocalDiffusion.Randomness;
using LocalDiffusion.Schedulers;
using LocalDiffusion.Vae;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Families;

/// <summary>
/// An opened model of some family, as the family-neutral orchestrator (<c>LocalDiffusion.Pipeline</c>) drives it: its
/// conditioner (<see cref="Encode"/>), its denoiser adapter (<see cref="Denoiser"/>: ONNX inputs and outputs, latent
/// channels and packing), its latent format and VAE, how guidance applies (<see cref="ModelFamily.Guidance"/>), its
/// defaults (<see cref="ModelInfo.Family"/>), and what it checks of a request beyond the shared limits. The orchestrator
/// knows no family: everything that differs between SD 1.x, SDXL, SD 3 and FLUX is answered here.
/// </summary>
internal abstract class FamilyModel : IDisposable
{
    /// <summary>What was detected and opened, with the family's defaults (set by the family, or by <see cref="Describe"/>).</summary>
    public ModelInfo Info { get; protected set; } = null!;

    /// <summary>Called once the model is open, for families that describe themselves from the folder they were opened from.</summary>
    public virtual void Describe(FamilyFolder folder, SessionFactory sessions, SchedulerRegistry schedulers)
    {
    }

    /// <summary>Latent channels, VAE scaling and shift.</summary>
    public required LatentFormat Latents { get; init; }

    /// <summary>The folder's scheduler config (the default sampler, and the config every sampler is built from).</summary>
    public required SchedulerConfig SchedulerConfig { get; init; }

    /// <summary>The UNet or transformer adapter.</summary>
    public abstract IDenoiser Denoiser { get; }

    /// <summary>The decoder of the pictures (with its float32 fallback, when an fp16 one ships with one).</summary>
    public abstract VaeDecoding Decoding { get; }

    /// <summary>The decoder of live previews when it is not the pictures' (a TAESD), opened on the first preview; null: <see cref="Decoding"/>'s.</summary>
    public abstract DeferredDecoder? Preview { get; }

    /// <summary>The VAE encoder's file, when the folder has one (img2img and inpainting need it).</summary>
    public abstract string? EncoderPath { get; }

    /// <summary>The VAE encoder, opened on first use; null without one.</summary>
    public abstract VaeEncoder? OpenEncoder();

    /// <summary>The training schedule's length (the hand-off split counts in it).</summary>
    public int TrainTimesteps => SchedulerConfig.NumTrainTimesteps ?? 1000;

    /// <summary>The sessions whose weights a LoRA may change (empty: the family takes no LoRAs).</summary>
    public virtual IReadOnlyList<OnnxComponent> LoraTargets => [];

    /// <summary>Refuses, naming the file and key, a request's LoRA this family cannot take (another family's, a T5 LoRA); before any work.</summary>
    public virtual void CheckLoras(IReadOnlyList<LoraAdapter> loras, bool skipUnmatched)
    {
    }

    /// <summary>The UNet ControlNets feed (null: the family takes no ControlNets).</summary>
    public virtual UNet? ControlTarget => null;

    /// <summary>Whether the family runs part of a schedule (DenoisingStart/DenoisingEnd: SDXL's base → refiner hand-off).</summary>
    public virtual bool SplitsSchedules => false;

    /// <summary>
    /// Whether intermediate latents carry noise beyond unit scale (the diffusion samplers' x₀ + σ·ε, σ up to ~15), so a
    /// live preview divides them by their RMS first; flow-matching latents, (1 − σ)·x₀ + σ·ε, are decoded as they are.
    /// </summary>
    public virtual bool PreviewsNormaliseNoise => false;

    /// <summary>Why image sides must be multiples of <see cref="ModelInfo.SizeMultiple"/>, for the message refusing another size.</summary>
    public abstract string SizeMultipleReason { get; }

    /// <summary>
    /// Whether its denoiser gives each row exactly the same prediction in a batch of several requests as alone, so that
    /// dynamic batching keeps its promise of bit-identical results; a family whose network does not is never batched.
    /// </summary>
    public virtual bool BatchesExactly => true;

    /// <summary>Whether its conditioning holds aesthetic scores instead of target sizes (an SDXL refiner's time ids).</summary>
    public virtual bool TakesAestheticScores => false;

    /// <summary>The request with the family's own defaults filled in (a refiner's or a flow model's img2img strength).</summary>
    public virtual GenerationRequest WithFamilyDefaults(GenerationRequest request) => request;

    /// <summary>Refuses, naming the field, what this family cannot run; called before any work.</summary>
    public abstract void Validate(GenerationRequest request);

    /// <summary>Refuses an output size the model's files cannot make (static shapes), naming the field.</summary>
    public virtual void CheckSize(GenerationRequest request, int width, int height)
    {
    }

    /// <summary>Steps left after img2img's strength (steps, strength), when the family counts them otherwise than SD's int(steps·strength).</summary>
    public virtual Func<int, float, int>? StepsLeft => null;

    /// <summary>Refuses a sampler that cannot follow this family's prediction (a flow sampler on a UNet, or the reverse).</summary>
    public abstract void CheckScheduler(IScheduler scheduler, GenerationRequest request);

    /// <summary>Sets <paramref name="scheduler"/>'s timesteps for an image of <paramref name="latentHeight"/>×<paramref name="latentWidth"/> latents.</summary>
    public virtual void SetTimesteps(IScheduler scheduler, int steps, int latentHeight, int latentWidth) => scheduler.SetTimesteps(steps);

    /// <summary>Holds the text encoders' sessions over the prompt encoding of one generation or batch.</summary>
    public abstract IDisposable UseConditioner();

    /// <summary>
    /// The conditioner: <paramref name="prompts"/> ([negative, prompt] with classifier-free guidance, else [prompt]), each
    /// repeated for <paramref name="images"/>, as the denoiser's conditioning rows (diffusers' row order).
    /// </summary>
    public abstract UNetInputs Encode(string[] prompts, int images, GenerationRequest request, int latentHeight, int latentWidth,
        List<string> warnings, TimingRecorder timings, RunOptions runOptions);

    /// <summary>
    /// The encoded rows with the request's guidance scale added where the denoiser takes it as an input (LCM's guidance
    /// embedding, FLUX.1-dev's guidance); outside <see cref="Encode"/> so that cached conditioning serves every scale.
    /// </summary>
    public virtual UNetInputs WithGuidance(UNetInputs inputs, float guidance) => inputs;

    /// <summary>Textual-inversion embeddings loaded for this model (null: none, or the family takes none).</summary>
    public virtual Embeddings.EmbeddingSet? Embeddings => null;

    /// <summary>Whether the request's prompts name one of <see cref="Embeddings"/>.</summary>
    public virtual bool UsesEmbeddings(GenerationRequest request) => false;

    /// <summary>What besides the prompts makes <see cref="Encode"/>'s result differ (for the conditioning cache's key).</summary>
    public abstract string ConditioningKey(GenerationRequest request, int rows, int latentHeight, int latentWidth);

    /// <summary>What the user should know about how the request's prompts are used (a negative prompt no pass reads).</summary>
    public abstract string? PromptNote(GenerationRequest request, bool classifierFree);

    /// <summary>The initial latents [n, C, h, w] and where the loop begins: noise, or an image's (or given) latents noised to the strength.</summary>
    public abstract PreparedLatents PrepareLatents(GenerationRequest request, IScheduler scheduler, TorchGenerator generator, int images,
        int latentHeight, int latentWidth, RunOptions runOptions);

    /// <summary>Every session opened (names of those loaded now are what <c>OpenSessions</c> reports).</summary>
    public abstract IEnumerable<OnnxComponent> Sessions { get; }

    /// <summary>Releases every session.</summary>
    public virtual void Dispose()
    {
        foreach (var component in Sessions) component.Dispose();
    }
}

/// <summary>A family's recommended request values.</summary>
/// <param name="Steps">Denoising steps.</param>
/// <param name="GuidanceScale">Guidance scale.</param>
/// <param name="Width">Native width in pixels.</param>
/// <param name="Height">Native height in pixels.</param>
/// <param name="MaxSequenceLength">T5 tokens the conditioner reads by default.</param>
internal sealed record FamilyDefaults(int Steps, float GuidanceScale, int Width, int Height, int MaxSequenceLength);
