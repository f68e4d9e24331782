using LocalDiffusion.Denoising;
using LocalDiffusion.Errors;
using LocalDiffusion.Latents;
using LocalDiffusion.Model;
using LocalDiffusion.Onnx;
using LocalDiffusion.PromptEncoding;
using LocalDiffusion.Randomness;
using LocalDiffusion.Schedulers;
using LocalDiffusion.Vae;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Families;

/// <summary>The conditioning a flow family's conditioner makes: hidden states [rows,L,D] and pooled vectors [rows,P], one row per prompt.</summary>
internal sealed record FamilyConditioning(float[] Hidden, int SequenceLength, int Width, float[] Pooled, int PooledWidth, int Rows)
{
    /// <summary>The transformer binding of the denoising loop these rows are conditioning (null outside a loop).</summary>
    public TransformerSlot? Slot { get; init; }
}

/// <summary>
/// What the flow-matching transformer families (SD 3, FLUX) share on top of the seam: T5 conditioning of a chosen length,
/// a velocity-predicting transformer behind a flow-match scheduler, 16-channel latents with a shift, and img2img that
/// enters the schedule the way diffusers' flow pipelines do. A family supplies its conditioner (<see cref="Encode(IReadOnlyList{string}, int, RunOptions)"/>),
/// its transformer call (<see cref="Predict"/>) and its schedule (<see cref="SetTimesteps(IFlowMatchScheduler, int, int, int)"/>).
/// </summary>
internal abstract partial class FlowFamilyModel : FamilyModel
{
    private readonly Lazy<VaeDecoding> _decoding;
    private readonly Lazy<IDenoiser> _denoiser;

    protected FlowFamilyModel()
    {
        _decoding = new Lazy<VaeDecoding>(() => new VaeDecoding(Decoder!, null));
        _denoiser = new Lazy<IDenoiser>(() => new Transformer(this));
    }

    /// <summary>The family's name and variant, e.g. "SD 3" or "FLUX.1-dev".</summary>
    public abstract string Name { get; }

    /// <summary>What the family's model cards recommend, as a request's defaults.</summary>
    public required FamilyDefaults Defaults { get; init; }

    /// <summary>How the guidance scale is applied.</summary>
    public abstract GuidanceMode Guidance { get; }

    /// <summary>The VAE decoder (latents / scaling + shift → pixels), or a TAESD3/TAEF1 (the latents as they are).</summary>
    public required VaeDecoder Decoder { get; init; }

    /// <summary>The decoder of live previews when it is not <see cref="Decoder"/> (a TAESD), opened on the first preview; null: <see cref="Decoder"/>.</summary>
    public DeferredDecoder? PreviewDecoder { get; init; }

    /// <summary>The VAE encoder for img2img, when the folder has one.</summary>
    public VaeEncoder? Encoder { get; init; }

    /// <summary>Every ONNX component opened, for <see cref="ModelInfo.Components"/> and disposal.</summary>
    public required IReadOnlyList<OnnxComponent> Opened { get; init; }

    /// <summary>The components a LoRA may change (the transformer and the CLIP encoders; not T5), named as LoRA keys name them.</summary>
    public IReadOnlyList<OnnxComponent> LoraComponents { get; init; } = [];

    /// <summary>How the model's folder is laid out, for <see cref="ModelInfo.Layout"/>.</summary>
    public string Layout { get; init; } = "diffusers";

    /// <summary>The T5 encoder's component name (<c>text_encoder_3</c> in SD 3, <c>text_encoder_2</c> in FLUX): LoRAs for it are refused.</summary>
    public string? T5Component { get; init; }

    /// <summary>The CLIP tokenizer's vocabulary size, for <see cref="ModelInfo"/>.</summary>
    public int TokenizerVocabularySize { get; init; }

    /// <summary>Image sides must be multiples of this (the VAE's 8 × the transformer's 2×2 patches).</summary>
    public virtual int SizeMultiple => VaeDecoder.Factor * 2;

    /// <summary>
    /// Encodes <paramref name="prompts"/> (one row each, in order) with at most <paramref name="maxSequenceLength"/> T5 tokens,
    /// each encoder's rows weighted by the prompts' attention weights (<see cref="FlowEmphasis"/>).
    /// </summary>
    public abstract FamilyConditioning Encode(IReadOnlyList<FlowPrompt> prompts, int maxSequenceLength, RunOptions runOptions);

    /// <summary>Encodes <paramref name="prompts"/> as plain text (weighting off).</summary>
    public FamilyConditioning Encode(IReadOnlyList<string> prompts, int maxSequenceLength, RunOptions runOptions) =>
        Encode(prompts.Select(p => FlowPrompt.Plain(p)).ToList(), maxSequenceLength, runOptions);

    /// <summary>
    /// The transformer on <paramref name="rows"/> rows of latents [rows,C,h,w] at scheduler timestep <paramref name="timestep"/>
    /// with conditioning rows <paramref name="conditioning"/>: writes its prediction [rows,C,h,w] into <paramref name="output"/>.
    /// </summary>
    public abstract void Predict(ReadOnlyMemory<float> latents, int rows, int latentHeight, int latentWidth, float timestep, float guidance,
        FamilyConditioning conditioning, Span<float> output, RunOptions runOptions);

    /// <summary>Sets the schedule for an image of <paramref name="latentHeight"/>×<paramref name="latentWidth"/> latents.</summary>
    public abstract void SetTimesteps(IFlowMatchScheduler scheduler, int steps, int latentHeight, int latentWidth);

    /// <inheritdoc/>
    public override string SizeMultipleReason => $"{Name} draws sides that are multiples of {SizeMultiple} px: 8 for the VAE × {SizeMultiple / VaeDecoder.Factor} for the transformer's patches";

    /// <inheritdoc/>
    public override IDenoiser Denoiser => _denoiser.Value;

    /// <inheritdoc/>
    public override VaeDecoding Decoding => _decoding.Value;

    /// <inheritdoc/>
    public override DeferredDecoder? Preview => PreviewDecoder;

    /// <inheritdoc/>
    public override string? EncoderPath => Encoder?.FilePath;

    /// <inheritdoc/>
    public override VaeEncoder? OpenEncoder() => Encoder;

    /// <inheritdoc/>
    public override IEnumerable<OnnxComponent> Sessions => PreviewDecoder?.Component is { } preview ? [.. Opened, preview] : Opened;

    /// <inheritdoc/>
    public override IReadOnlyList<OnnxComponent> LoraTargets => LoraComponents;

    /// <inheritdoc/>
    public override void CheckLoras(IReadOnlyList<LoraAdapter> loras, bool skipUnmatched) =>
        FamilyLoras.Check(this, Info.Family.Architecture, loras, skipUnmatched);

    /// <inheritdoc/>
    public override void Describe(FamilyFolder folder, SessionFactory sessions, SchedulerRegistry schedulers) => Info = new ModelInfo
    {
        Root = folder.Root,
        PipelineClass = folder.PipelineClass,
        Layout = Layout,
        Device = sessions.Active.ToString(),
        DeviceNotes = sessions.Notes.ToList(),
        Components = Opened.Select(c => new ComponentInfo(c.Name, c.FilePath, c.Inputs.Values.ToList(), c.Outputs.Values.ToList()) { Cache = c.CacheStatus }).ToList(),
        Scheduler = schedulers.Describe(SchedulerConfig.ClassName ?? "flow_euler").DisplayName,
        SizeMultiple = SizeMultiple,
        NativeWidth = Defaults.Width,
        NativeHeight = Defaults.Height,
        VaeScalingFactor = Latents.ScalingFactor,
        VaeDecoderPath = Decoder.FilePath,
        VaeDecoderPrecision = Decoder.Precision,
        VaeDecoderKind = Decoder.Kind,
        PreviewDecoderPath = PreviewDecoder?.FilePath ?? Decoder.FilePath,
        PreviewDecoderKind = PreviewDecoder?.Kind ?? Decoder.Kind,
        TokenizerVocabularySize = TokenizerVocabularySize,
        UnetAttention = "as exported",
        Family = new ModelFamily
        {
            Architecture = Guidance == GuidanceMode.ClassifierFree ? ModelArchitecture.StableDiffusion3 : ModelArchitecture.Flux,
            Guidance = Guidance,
            VariantName = Name,
            DefaultSteps = Defaults.Steps,
            DefaultGuidanceScale = Defaults.GuidanceScale,
            VaeScalingFactor = Latents.ScalingFactor,
        },
        Tasks = Encoder is null ? ["text-to-image"] : ["text-to-image", "img2img", "inpainting"],
    };

    /// <inheritdoc/>
    public override GenerationRequest WithFamilyDefaults(GenerationRequest r) =>
        r.Strength is null && (r.InitImage is not null || r.InitLatents is not null) ? r with { Strength = FlowImageLatents.DefaultStrength } : r;

    /// <inheritdoc/>
    public override void Validate(GenerationRequest r)
    {
        if (r.PromptWeighting)
        {
            PromptEncoder.Validate(r.Prompt, nameof(r.Prompt));
            // Only SD 3 has an unconditional pass to read the negative prompt in.
            if (Guidance == GuidanceMode.ClassifierFree) PromptEncoder.Validate(r.NegativePrompt, nameof(r.NegativePrompt));
        }
        if (r.MaxSequenceLength is < 1 or > RequestLimits.MaxSequenceLength)
            throw new InvalidRequestException(nameof(r.MaxSequenceLength), r.MaxSequenceLength, null, called => $"{called} is {r.MaxSequenceLength}; it must be between 1 and {RequestLimits.MaxSequenceLength} T5 tokens.");
        if (r.InitialLatents is not null)
            throw new ModelIncompatibleException(nameof(r.InitialLatents), Name, called => $"{called} are not supported with {Name}: its noise is drawn from Seed.");
    }

    /// <inheritdoc/>
    public override void CheckSize(GenerationRequest r, int width, int height)
    {
        if (r.InitPixels is { } pixels && pixels.Length != 3 * width * height)
            throw new InvalidRequestException(nameof(r.InitImage), null, null, _ => $"InitPixels has {pixels.Length} values; 3×{height}×{width} are needed.");
    }

    /// <inheritdoc/>
    public override Func<int, float, int>? StepsLeft => static (steps, strength) => FlowImageLatents.BeginIndex(steps, strength, 1).StepsLeft;

    /// <inheritdoc/>
    public override void CheckScheduler(IScheduler scheduler, GenerationRequest request)
    {
        if (scheduler is not IFlowMatchScheduler)
            throw new ModelIncompatibleException(nameof(GenerationRequest.Scheduler), Name, called => $"{called} '{request.Scheduler ?? SchedulerConfig.ClassName}' is not a flow-matching scheduler; {Name} predicts a velocity and runs flow_euler or flow_heun.");
    }

    /// <inheritdoc/>
    public override void SetTimesteps(IScheduler scheduler, int steps, int latentHeight, int latentWidth) =>
        SetTimesteps((IFlowMatchScheduler)scheduler, steps, latentHeight, latentWidth);

    /// <inheritdoc/>
    public override IDisposable UseConditioner() => new Leases([.. Opened.Where(c => c.Name.StartsWith("text_encoder", StringComparison.Ordinal)).Select(c => c.Use())]);

    /// <inheritdoc/>
    public override UNetInputs Encode(string[] prompts, int images, GenerationRequest request, int latentHeight, int latentWidth,
        List<string> warnings, TimingRecorder timings, RunOptions runOptions)
    {
        // With CFG the rows are [negative, prompt] (diffusers' order), else [prompt].
        var read = new FlowPrompt[prompts.Length];
        for (var p = 0; p < prompts.Length; p++)
        {
            read[p] = FlowPrompt.Read(prompts[p], request.PromptWeighting, negative: p < prompts.Length - 1);
            if (read[p].IgnoredBreak)
                warnings.Add($"The {(read[p].Negative ? "negative prompt" : "prompt")}'s BREAK was ignored: {Name} reads a prompt as one CLIP window and one T5 sequence, so BREAK cannot start a new chunk.");
        }
        var length = request.MaxSequenceLength ?? Defaults.MaxSequenceLength;
        var c = Repeat(Encode(read, length, runOptions), images);
        foreach (var prompt in read) WarnIfCut(prompt, length, warnings);
        return new UNetInputs
        {
            EncoderHiddenStates = c.Hidden, Batch = c.Rows, SequenceLength = c.SequenceLength, HiddenSize = c.Width, TextEmbeds = c.Pooled,
        };
    }

    // As diffusers logs for its CLIP and T5 encoders: a long prompt is cut to each window, and the user is told how long it
    // was. The counts were noted as the rows were made (FlowPrompt.Lengths); none noted, no such encoder ran.
    private void WarnIfCut(FlowPrompt prompt, int length, List<string> warnings)
    {
        var which = prompt.Negative ? "negative prompt" : "prompt";
        if (prompt.Lengths.ClipTokens is { } clip && clip > prompt.Lengths.ClipWindow)
        {
            var encoders = Opened.Where(o => o.Name.StartsWith("text_encoder", StringComparison.Ordinal) && o.Name != T5Component).Select(o => o.Name).ToList();
            warnings.Add($"The {which} is {clip} CLIP tokens; {Name}'s CLIP {(encoders.Count == 1 ? "encoder" : "encoders")} ({string.Join(", ", encoders)}) read the first {prompt.Lengths.ClipWindow} (a {prompt.Lengths.ClipWindow + 2}-token window with BOS and EOS) and cut the rest.");
        }
        // T5 keeps length − 1 pieces and EOS.
        if (prompt.Lengths.T5Tokens is { } pieces && pieces > length - 1)
            warnings.Add($"The {which} is {pieces} T5 tokens; {Name} read the first {length - 1} (MaxSequenceLength {length}) and cut the rest.");
    }

    /// <inheritdoc/>
    public override UNetInputs WithGuidance(UNetInputs inputs, float guidance) =>
        Guidance == GuidanceMode.Embedded ? inputs with { EmbeddedGuidance = guidance } : inputs;

    /// <inheritdoc/>
    public override string ConditioningKey(GenerationRequest request, int rows, int latentHeight, int latentWidth) =>
        $"t5:{request.MaxSequenceLength ?? Defaults.MaxSequenceLength}";

    /// <inheritdoc/>
    public override string? PromptNote(GenerationRequest request, bool classifierFree) =>
        classifierFree || request.NegativePrompt.Length == 0 ? null
        : Guidance == GuidanceMode.ClassifierFree ? "The negative prompt was not used: guidance at or below 1 runs no unconditional pass."
        : $"The negative prompt was not used: {Name} has no unconditional pass ({(Guidance == GuidanceMode.Embedded ? "its guidance is an input of the transformer" : "it runs unguided")}).";

    /// <inheritdoc/>
    public override PreparedLatents PrepareLatents(GenerationRequest request, IScheduler scheduler, TorchGenerator generator, int images,
        int latentHeight, int latentWidth, RunOptions runOptions)
    {
        var flow = (IFlowMatchScheduler)scheduler;
        SetTimesteps(flow, request.StepCount, latentHeight, latentWidth);
        // Flow matching starts from unit noise: torch.randn((n, C, h, w), generator), unscaled.
        if (request.InitImage is null && request.InitLatents is null)
        {
            var noise = new float[images * Latents.Channels * latentHeight * latentWidth];
            generator.FillNormal(noise);
            return new PreparedLatents(noise, 0, null, null);
        }
        var begin = FlowImageLatents.BeginIndex(request.StepCount, request.EffectiveStrength, scheduler.Order).BeginIndex;
        scheduler.SetBeginIndex(begin);
        var pixels = request.InitPixels ?? request.InitImage?.Resize(latentWidth * VaeDecoder.Factor, latentHeight * VaeDecoder.Factor).ToChw();
        return FlowImageLatents.Prepare(request, this, flow, begin, pixels, generator, images, latentHeight, latentWidth, runOptions);
    }

    // diffusers repeats each prompt's rows num_images_per_prompt times: [neg×n, pos×n].
    private static FamilyConditioning Repeat(FamilyConditioning c, int n)
    {
        if (n == 1) return c;
        int hiddenRow = c.SequenceLength * c.Width, pooledRow = c.PooledWidth;
        var hidden = new float[c.Rows * n * hiddenRow];
        var pooled = new float[c.Rows * n * pooledRow];
        for (var r = 0; r < c.Rows; r++)
            for (var k = 0; k < n; k++)
            {
                c.Hidden.AsSpan(r * hiddenRow, hiddenRow).CopyTo(hidden.AsSpan((r * n + k) * hiddenRow));
                c.Pooled.AsSpan(r * pooledRow, pooledRow).CopyTo(pooled.AsSpan((r * n + k) * pooledRow));
            }
        return c with { Hidden = hidden, Pooled = pooled, Rows = c.Rows * n };
    }

    private sealed class Leases(OnnxComponent.Lease[] leases) : IDisposable
    {
        public void Dispose()
        {
            foreach (var lease in leases) lease.Dispose();
        }
    }

    // The seam's denoiser over the family's transformer call: conditioning rows as the family's, one call per evaluation.
    private sealed class Transformer(FlowFamilyModel model) : IDenoiser
    {
        private readonly OnnxComponent _session = model.Opened.First(c => c.Name == "transformer");

        public string FilePath => _session.FilePath;

        public int LatentChannels => model.Latents.Channels;

        public int InputChannels => model.Latents.Channels;

        public OnnxComponent.Lease Use() => _session.Use();

        public IDenoiserConditioning Prepare(UNetInputs inputs)
        {
            float[] pooled = inputs.TextEmbeds ?? [];
            return new Rows(inputs, new FamilyConditioning(inputs.EncoderHiddenStates, inputs.SequenceLength, inputs.HiddenSize, pooled,
                pooled.Length / inputs.Batch, inputs.Batch) { Slot = new TransformerSlot([inputs.EncoderHiddenStates, pooled]) });
        }

        public void Predict(ReadOnlyMemory<float> input, int latentHeight, int latentWidth, float timestep, IDenoiserConditioning conditioning,
            Span<float> output, RunOptions runOptions)
        {
            var rows = (Rows)conditioning;
            var start = System.Diagnostics.Stopwatch.GetTimestamp();
            model.Predict(input, rows.Inputs.Batch, latentHeight, latentWidth, timestep, rows.Inputs.EmbeddedGuidance ?? 0f, rows.Family, output, runOptions);
            var ticks = System.Diagnostics.Stopwatch.GetTimestamp() - start;
            foreach (var timings in rows.Timings) timings.UnetCall(ticks, ticks);
        }
    }

    private sealed class Rows(UNetInputs inputs, FamilyConditioning family) : IDenoiserConditioning
    {
        public UNetInputs Inputs { get; } = inputs;

        public FamilyConditioning Family { get; } = family;

        public int CallsPerEvaluation => 1;

        public TimingRecorder[] Timings { get; set; } = [];

        public void Dispose() => Family.Slot?.Dispose();
    }
}
