using LocalDiffusion.Latents;
using LocalDiffusion.Denoising;
using LocalDiffusion.Model;
using LocalDiffusion.Onnx;
using LocalDiffusion.PromptEncoding;
using LocalDiffusion.Schedulers;
using LocalDiffusion.TextEncoder;
using LocalDiffusion.Tokenizer;
using LocalDiffusion.Vae;

namespace LocalDiffusion.Families.StableDiffusion;

/// <summary>
/// The UNet family: SD 1.x/2.x, SDXL base and refiner, with their LCM, Turbo, v-prediction and inpainting variants
/// (<see cref="ModelFamily.Detect"/> tells them apart from the UNet's inputs and the folder's configs). It is asked last
/// and claims every folder the others leave, so a folder that is no model at all gets its detailed refusal here.
/// </summary>
internal sealed class StableDiffusionFamily : DiffusionFamily
{
    /// <inheritdoc/>
    public override string Name => "Stable Diffusion";

    /// <inheritdoc/>
    public override bool Claims(FamilyFolder folder) => true;

    // What SD 1.x exports ship in scheduler/scheduler_config.json (GUIDE §3), for folders that lack one.
    private static readonly SchedulerConfig StableDiffusion15Scheduler = SchedulerConfig.Default with
    {
        ClassName = "PNDMScheduler",
        NumTrainTimesteps = 1000,
        BetaStart = 0.00085,
        BetaEnd = 0.012,
        BetaSchedule = BetaSchedule.ScaledLinear,
        PredictionType = PredictionType.Epsilon,
        SetAlphaToOne = false,
        SkipPrkSteps = true,
        StepsOffset = 1,
        TimestepSpacing = TimestepSpacing.Leading,
    };

    /// <summary>Opens the folder's text encoder(s), UNet and VAE, checking that they belong together.</summary>
    public override FamilyModel Open(FamilyFolder familyFolder, SessionFactory sessions, PipelineOptions options, List<OnnxComponent> opened)
    {
        var folder = ModelFolder.Open(familyFolder.Root);
        ModelFamily.CheckFolder(folder);
        // Another VAE decoder in place of the folder's (A1111's and ComfyUI's VAE choice); its fp32 variant, if it ships one.
        var vaeOverride = options.VaeDecoderPath is { } vaePath ? VaeDecoderFile.Open(vaePath) : null;
        var decoderFile = vaeOverride ?? VaeDecoderFile.Describe(folder.VaeDecoderPath);
        var decoderPath = decoderFile.ModelPath;
        var previewFile = VaeDecoderFile.ForPreviews(options, folder.Root, decoderFile);
        var tokenizer = LoadTokenizer(folder.TokenizerDirectory);
        var schedulerConfig = LoadSchedulerConfig(folder.SchedulerConfigPath);
        var schedulers = options.Schedulers ?? SchedulerRegistry.Default;
        var schedulerName = DescribeConfigured(schedulers, schedulerConfig, folder.SchedulerConfigPath);
        List<(string, string)> components = [(folder.IsRefiner ? "text_encoder_2" : "text_encoder", folder.TextEncoderPath), ("unet", folder.UnetPath), ("vae_decoder", decoderPath)];
        if (folder.TextEncoder2Path is { } te2Path && !folder.IsRefiner) components.Add(("text_encoder_2", te2Path));
        var loaded = ComponentLoader.LoadAll(sessions, components, opened);
        var textEncoder = new ClipTextEncoder(loaded[0]);
        var unet = new UNet(loaded[1], folder.UnetInChannels);
        var decoder = new VaeDecoder(loaded[2], tiny: decoderFile.Tiny) { Tiling = options.VaeTiling };
        // Opened on the first preview: a generation without previews never needs it.
        var previewDecoder = previewFile is null ? null : new DeferredDecoder(previewFile.ModelPath, previewFile.Tiny, UNet.LatentChannels, () => DeferredDecoder.OpenWith(
            OnnxComponent.Load(FamilyDecoders.PreviewComponent, previewFile.ModelPath, sessions, options.LowMemory),
            session => new VaeDecoder(session, tiny: previewFile.Tiny) { Tiling = options.VaeTiling }));
        if (tokenizer.MaxLength != textEncoder.SequenceLength)
            throw new ModelLoadException(folder.TokenizerDirectory,
                $"the tokenizer's model_max_length is {tokenizer.MaxLength}, but the text encoder takes {textEncoder.SequenceLength} tokens.");

        var family = ModelFamily.Detect(folder, loaded[1].Inputs, unet.InputChannels, textEncoder.DeclaredHiddenSize,
            tokenizer.PadId != tokenizer.EosId, schedulerConfig);
        if (family.Unsupported is { } why) throw new ModelLoadException(folder.UnetPath, why);
        unet.MaxRowsPerCall = options.MaxUnetBatch ?? DefaultRowsPerCall(family, sessions.Active);
        foreach (var given in new[] { vaeOverride, previewFile })
            if (given is { ScalingFactor: { } vaeScale, ConfigPath: { } vaeConfig } && Math.Abs(vaeScale - family.VaeScalingFactor) > 1e-6f)
                throw new ModelLoadException(vaeConfig,
                    $"this VAE's scaling_factor is {vaeScale.ToString(System.Globalization.CultureInfo.InvariantCulture)}, but the model's latents are scaled by {family.VaeScalingFactor.ToString(System.Globalization.CultureInfo.InvariantCulture)} ({family.Name}): the VAE belongs to another model family, whose latents mean something else.");
        var vae = new VaeDecoding(decoder, LoadFloat32Fallback(decoder, sessions, options, opened));
        (ClipTokenizer, ClipTextEncoder)? second = null;
        int? conditioningWidth = textEncoder.DeclaredHiddenSize;
        if (family.Architecture == ModelArchitecture.StableDiffusionXL)
        {
            var tokenizer2 = LoadTokenizer(folder.Tokenizer2Directory!);
            var textEncoder2 = new ClipTextEncoder(loaded[3]);
            if (tokenizer2.MaxLength != textEncoder2.SequenceLength || textEncoder2.SequenceLength != textEncoder.SequenceLength)
                throw new ModelLoadException(folder.Tokenizer2Directory!,
                    $"tokenizer_2 takes {tokenizer2.MaxLength} tokens and text_encoder_2 {textEncoder2.SequenceLength}, but text_encoder takes {textEncoder.SequenceLength}: SDXL's encoders must agree.");
            // Both must expose what SDXL reads (hidden_states.N, text_embeds) before any generation.
            var (p1, _) = textEncoder.XlOutputs(pooled: false);
            var (p2, _) = textEncoder2.XlOutputs(pooled: true);
            conditioningWidth = p1.FixedDimension(2) is { } w1 && p2.FixedDimension(2) is { } w2 ? (int)(w1 + w2) : null;
            second = (tokenizer2, textEncoder2);
        }
        else if (family.Architecture == ModelArchitecture.StableDiffusionXLRefiner)
        {
            var (p2, _) = textEncoder.XlOutputs(pooled: true);
            conditioningWidth = p2.FixedDimension(2) is { } w2 ? (int)w2 : null;
        }
        if (conditioningWidth is { } te && unet.DeclaredHiddenSize is { } un && te != un)
            throw new ModelLoadException(folder.UnetPath,
                $"encoder_hidden_states has width {un}, but the text encoder{(second is null ? "" : "s")} ({folder.TextEncoderPath}{(second is null ? "" : " + text_encoder_2")}) output {te}: the components come from different models.");

        var sizeMultiple = VaeDecoder.Factor << unet.DownsamplingLevels;
        var (nativeH, nativeW) = NativeLatentSize(folder, unet, decoder, family.Architecture);
        if (unet.FixedLatentSize is null && folder.UnetSampleSize is { } sample && sample * VaeDecoder.Factor % sizeMultiple != 0)
            throw new ModelLoadException(Path.Combine(Path.GetDirectoryName(folder.UnetPath)!, "config.json"),
                $"\"sample_size\" is {sample} ({sample * VaeDecoder.Factor} px), but this UNet halves its latents {unet.DownsamplingLevels} times, so sides must be multiples of {sizeMultiple} px.");
        var info = new ModelInfo
        {
            Root = folder.Root,
            PipelineClass = folder.PipelineClass,
            Device = sessions.Active.ToString(),
            DeviceNotes = sessions.Notes.ToList(),
            Components = opened.Select(c => new ComponentInfo(c.Name, c.FilePath, c.Inputs.Values.ToList(), c.Outputs.Values.ToList()) { Cache = c.CacheStatus }).ToList(),
            Scheduler = schedulerName,
            SizeMultiple = sizeMultiple,
            NativeWidth = nativeW * VaeDecoder.Factor,
            NativeHeight = nativeH * VaeDecoder.Factor,
            VaeScalingFactor = family.VaeScalingFactor,
            VaeDecoderPath = decoder.FilePath,
            VaeDecoderPrecision = decoder.Precision,
            VaeDecoderFallbackPath = vae.Float32Fallback?.FilePath,
            VaeDecoderKind = decoder.Kind,
            PreviewDecoderPath = previewDecoder?.FilePath ?? decoder.FilePath,
            PreviewDecoderKind = previewDecoder?.Kind ?? decoder.Kind,
            TokenizerVocabularySize = tokenizer.VocabularySize,
            UnetFixedBatch = unet.FixedBatch,
            UnetAttention = unet.Attention,
            UnetControlNetResiduals = unet.ResidualInputs.Count,
            Family = family,
            Tasks = family.Tasks(folder.VaeEncoderPath is not null),
        };
        // Under LowMemory each session is released after the stage that uses it; the first generation uses those opened here.
        foreach (var component in opened) component.ReleaseWhenIdle = options.LowMemory;
        // Opened on first use: only img2img and inpainting need the encoder.
        var vaeEncoder = new Lazy<VaeEncoder?>(() => folder.VaeEncoderPath is { } encoderPath
            ? new VaeEncoder(OnnxComponent.Load("vae_encoder", encoderPath, sessions, options.LowMemory)) : null);
        var model = new StableDiffusionModel(folder, tokenizer, textEncoder, unet, vae, previewDecoder, vaeEncoder, second, info)
        {
            Latents = new LatentFormat(UNet.LatentChannels, family.VaeScalingFactor, 0f),
            SchedulerConfig = schedulerConfig,
        };
        model.LoadEmbeddings(options, tokenizer, second?.Item1);
        return model;
    }

    private static string DescribeConfigured(SchedulerRegistry schedulers, SchedulerConfig config, string? configPath)
    {
        try
        {
            _ = schedulers.CreateFromConfig(config);
        }
        catch (Exception e) when (e is NotSupportedException or InvalidDataException or ArgumentException)
        {
            throw new ModelLoadException(configPath ?? "scheduler config", e.Message, e);
        }
        return schedulers.All.First(i => i.DiffusersClass == config.ClassName).DisplayName;
    }


    // SDXL's UNet at 1024² on the CPU: the guidance pair in one call grows the arena about 2.4 GB over the weights, one
    // row at a time about half, at no cost in step time (benchmarks/README.md, "An SDXL-size model"): one row per call.
    // Elsewhere (and on a GPU, where the pair in one call is the faster) every row goes in one call.
    internal static int? DefaultRowsPerCall(ModelFamily family, ExecutionDevice device) =>
        device.Kind == ExecutionProviderKind.Cpu
        && family.Architecture is ModelArchitecture.StableDiffusionXL or ModelArchitecture.StableDiffusionXLRefiner ? 1 : null;
    private static ClipTokenizer LoadTokenizer(string directory)
    {
        try
        {
            return ClipTokenizer.Load(directory);
        }
        catch (TokenizerFileException e)
        {
            throw new ModelLoadException(e.FilePath, e.Message, e);
        }
        catch (FileNotFoundException e)
        {
            throw new ModelLoadException(e.FileName ?? directory, e.Message, e);
        }
        catch (DirectoryNotFoundException e)
        {
            throw new ModelLoadException(directory, e.Message, e);
        }
    }

    private static SchedulerConfig LoadSchedulerConfig(string? path)
    {
        if (path is null) return StableDiffusion15Scheduler;
        try
        {
            return SchedulerConfig.Load(path);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            throw new ModelLoadException(path, SchedulerConfigProblem.Of(e), e);
        }
    }

    /// <summary>
    /// The float32 decoder to decode with when <paramref name="decoder"/> is float16 and overflows: its float32 variant
    /// (<see cref="VaeDecoderFile.Float32VariantOf"/>) when one ships beside it, loaded now so that a broken one is
    /// named at load; null for a float32 decoder or without a variant.
    /// </summary>
    private static VaeDecoder? LoadFloat32Fallback(VaeDecoder decoder, SessionFactory sessions, PipelineOptions options, List<OnnxComponent> opened)
    {
        var variant = VaeDecoderFile.Float32VariantOf(decoder.FilePath);
        if (!decoder.IsFloat16 || !File.Exists(variant)) return null;
        var component = OnnxComponent.Load("vae_decoder_fp32", variant, sessions);
        opened.Add(component);
        // Used only when the first decoder overflows: under LowMemory it is not held until then.
        if (options.LowMemory) component.ReleaseIfIdle();
        var fallback = new VaeDecoder(component, tiny: decoder.Tiny) { Tiling = options.VaeTiling };
        if (fallback.IsFloat16)
            throw new ModelLoadException(variant,
                $"named as the float32 variant of {Path.GetFileName(decoder.FilePath)}, but it computes in float16 (float16 inputs, outputs or weights): it would overflow as that one does.");
        return fallback;
    }

    private static (int H, int W) NativeLatentSize(ModelFolder folder, UNet unet, VaeDecoder vae, ModelArchitecture architecture) =>
        unet.FixedLatentSize ?? vae.FixedLatentSize
        ?? (folder.UnetSampleSize is { } s ? (s, s)
            // SD 1.x's 512×512, SDXL's 1024×1024, when nothing says otherwise.
            : architecture is ModelArchitecture.StableDiffusionXL or ModelArchitecture.StableDiffusionXLRefiner ? (128, 128) : (64, 64));
}
