using LocalDiffusion.Embeddings;
using LocalDiffusion.Latents;
using LocalDiffusion.Onnx;
using LocalDiffusion.Schedulers;
using LocalDiffusion.TextEncoder;
using LocalDiffusion.Vae;

namespace LocalDiffusion.Families.Flux;

/// <summary>
/// FLUX.1 schnell and dev, in either of two layouts. diffusers' FluxPipeline exported to ONNX (optimum's layout):
/// transformer/ (FluxTransformer2DModel, packed 2×2 latents with img_ids/txt_ids; dev also takes a <c>guidance</c> input),
/// text_encoder/ (CLIP-L, pooled output), text_encoder_2/ (T5) with tokenizer_2/, and a 16-channel VAE with scaling and
/// shift factors. Or Black Forest Labs' own TensorRT ONNX release (<see cref="BflRelease"/>: clip.opt/, t5.opt/,
/// transformer.opt/&lt;precision&gt;/, vae.opt/, plus the tokenizers a user adds), whose files are found there and then
/// opened as the same components.
/// </summary>
internal sealed class FluxFamily : DiffusionFamily
{
    public override string Name => "FLUX.1";

    // Img2Img/Inpaint folders hold the same components; ControlNet, Fill, Redux and the rest hold others and are refused.
    public override bool Claims(FamilyFolder folder) =>
        folder.PipelineClass is "FluxPipeline" or "FluxImg2ImgPipeline" or "FluxInpaintPipeline" || BflRelease.Matches(folder);

    public override FamilyModel Open(FamilyFolder folder, SessionFactory sessions, PipelineOptions options, List<OnnxComponent> opened)
    {
        // Every file is found (and a missing one refused) before any session opens.
        var bfl = BflRelease.Matches(folder) ? BflRelease.Find(folder) : null;
        if (bfl is null) folder.RequireLayout("transformer", "a Flux pipeline (a transformer over packed latents, CLIP-L and T5)");
        // The loader's preflight counts diffusers' folder names; BFL's are counted here, the chosen precision only.
        else MemoryPreflight.Check(folder, [.. new[] { bfl.Clip, bfl.T5, bfl.Transformer, bfl.VaeDecoder }.Select(f => Path.GetRelativePath(folder.Root, Path.GetDirectoryName(f)!))],
            options.LowMemory, sessions.Active);
        var schedulers = options.Schedulers ?? SchedulerRegistry.Default;
        var scheduler = bfl is null ? FamilyLoading.Scheduler(folder, schedulers) : null;
        var tokenizer = FamilyLoading.Clip(bfl?.ClipTokenizer ?? folder.Directory("tokenizer", "CLIP-L's tokenizer"));
        var t5Tokenizer = FamilyLoading.T5(bfl?.T5Tokenizer ?? folder.Directory("tokenizer_2", "T5's SentencePiece tokenizer (spiece.model)"));
        var decoders = FamilyDecoders.Find(folder, options, bfl?.VaeDecoder);
        List<(string, string)> components =
        [
            ("text_encoder", bfl?.Clip ?? folder.Model("text_encoder", "CLIP-L (CLIPTextModel, whose pooled output FLUX reads)")),
            ("text_encoder_2", bfl?.T5 ?? folder.Model("text_encoder_2", "the T5 encoder")),
            ("transformer", bfl?.Transformer ?? folder.Model("transformer", "the FLUX transformer (FluxTransformer2DModel)")),
            ("vae_decoder", decoders.Pictures.ModelPath),
        ];
        var loaded = ComponentLoader.LoadAll(sessions, components, opened);
        var transformer = loaded[2];
        foreach (var input in new[] { "hidden_states", "encoder_hidden_states", "pooled_projections", "timestep", "img_ids", "txt_ids" })
            _ = transformer.Input(input); // refused now, naming the file and what it has, not at the first step
        var dev = transformer.Inputs.ContainsKey("guidance");
        var latents = bfl is null
            ? new LatentFormat(16, (float)folder.Number("vae_decoder", "scaling_factor", 0.3611), (float)folder.Number("vae_decoder", "shift_factor", 0.1159))
            : BflRelease.Latents;
        var t5 = new T5TextEncoder(loaded[1]);
        var textLength = FluxTextLength.Fixed(t5, loaded[1].FilePath, transformer);
        var encoder = FamilyLoading.VaeEncoder(folder, sessions, options, opened, latents.Channels);
        var model = new FluxModel(loaded[0], tokenizer, t5, t5Tokenizer, transformer, dev, textLength)
        {
            // The model cards: dev 28 steps at guidance 3.5 with 512 T5 tokens; schnell 4 unguided steps with 256. Both
            // 1024². An export with a static text length (Black Forest Labs' are) takes that length only.
            Defaults = dev ? new FamilyDefaults(28, 3.5f, 1024, 1024, textLength ?? 512) : new FamilyDefaults(4, 0f, 1024, 1024, textLength ?? 256),
            Latents = latents,
            Decoder = decoders.PicturesDecoder(loaded[3], latents),
            PreviewDecoder = decoders.PreviewDecoder(loaded, latents),
            Encoder = encoder,
            SchedulerConfig = scheduler ?? BflRelease.Scheduler(dev),
            Opened = [.. opened],
            TokenizerVocabularySize = tokenizer.VocabularySize,
            LoraComponents = [loaded[0], transformer],
            T5Component = "text_encoder_2",
            Layout = bfl?.Layout ?? "diffusers",
        };
        // Textual inversion: only CLIP-L takes embeddings (an SDXL file's clip_l, or a one-set file of its width); T5 none.
        model.LoadEmbeddings(options, [new EmbeddingSlot(loaded[0].Name, loaded[0].FilePath, tokenizer, TextualInversion.ClipL)]);
        return model;
    }
}
