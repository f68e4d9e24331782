using LocalDiffusion.Embeddings;
using LocalDiffusion.Latents;
using LocalDiffusion.Onnx;
using LocalDiffusion.Schedulers;
using LocalDiffusion.TextEncoder;
using LocalDiffusion.Vae;

namespace LocalDiffusion.Families.Flux;

/// <summary>
/// FLUX.1 schnell and dev (diffusers' FluxPipeline exported to ONNX, optimum's layout): transformer/ (FluxTransformer2DModel,
/// packed 2×2 latents with img_ids/txt_ids; dev also takes a <c>guidance</c> input), text_encoder/ (CLIP-L, pooled output),
/// text_encoder_2/ (T5) with tokenizer_2/, and a 16-channel VAE with scaling and shift factors. Black Forest Labs' own
/// TensorRT ONNX release is laid out differently (see models/test/README.md) and is refused naming what is missing.
/// </summary>
internal sealed class FluxFamily : DiffusionFamily
{
    public override string Name => "FLUX.1";

    // Img2Img/Inpaint folders hold the same components; ControlNet, Fill, Redux and the rest hold others and are refused.
    public override bool Claims(FamilyFolder folder) => folder.PipelineClass is "FluxPipeline" or "FluxImg2ImgPipeline" or "FluxInpaintPipeline";

    public override FamilyModel Open(FamilyFolder folder, SessionFactory sessions, PipelineOptions options, List<OnnxComponent> opened)
    {
        folder.RequireLayout("transformer", "a Flux pipeline (a transformer over packed latents, CLIP-L and T5)");
        var schedulers = options.Schedulers ?? SchedulerRegistry.Default;
        var scheduler = FamilyLoading.Scheduler(folder, schedulers);
        var tokenizer = FamilyLoading.Clip(folder.Directory("tokenizer", "CLIP-L's tokenizer"));
        var t5Tokenizer = FamilyLoading.T5(folder.Directory("tokenizer_2", "T5's SentencePiece tokenizer (spiece.model)"));
        var decoders = FamilyDecoders.Find(folder, options);
        List<(string, string)> components =
        [
            ("text_encoder", folder.Model("text_encoder", "CLIP-L (CLIPTextModel, whose pooled output FLUX reads)")),
            ("text_encoder_2", folder.Model("text_encoder_2", "the T5 encoder")),
            ("transformer", folder.Model("transformer", "the FLUX transformer (FluxTransformer2DModel)")),
            ("vae_decoder", decoders.Pictures.ModelPath),
        ];
        decoders.AddPreview(components);
        var loaded = ComponentLoader.LoadAll(sessions, components, opened);
        var transformer = loaded[2];
        foreach (var input in new[] { "hidden_states", "encoder_hidden_states", "pooled_projections", "timestep", "img_ids", "txt_ids" })
            _ = transformer.Input(input); // refused now, naming the file and what it has, not at the first step
        var dev = transformer.Inputs.ContainsKey("guidance");
        var latents = new LatentFormat(16,
            (float)folder.Number("vae_decoder", "scaling_factor", 0.3611), (float)folder.Number("vae_decoder", "shift_factor", 0.1159));
        var encoder = FamilyLoading.VaeEncoder(folder, sessions, options, opened, latents.Channels);
        var model = new FluxModel(loaded[0], tokenizer, new T5TextEncoder(loaded[1]), t5Tokenizer, transformer, dev)
        {
            // The model cards: dev 28 steps at guidance 3.5 with 512 T5 tokens; schnell 4 unguided steps with 256. Both 1024².
            Defaults = dev ? new FamilyDefaults(28, 3.5f, 1024, 1024, 512) : new FamilyDefaults(4, 0f, 1024, 1024, 256),
            Latents = latents,
            Decoder = decoders.PicturesDecoder(loaded[3], latents),
            PreviewDecoder = decoders.PreviewDecoder(loaded, latents),
            Encoder = encoder,
            SchedulerConfig = scheduler,
            Opened = [.. opened],
            TokenizerVocabularySize = tokenizer.VocabularySize,
            LoraComponents = [loaded[0], transformer],
            T5Component = "text_encoder_2",
        };
        // Textual inversion: only CLIP-L takes embeddings (an SDXL file's clip_l, or a one-set file of its width); T5 none.
        model.LoadEmbeddings(options, [new EmbeddingSlot(loaded[0].Name, loaded[0].FilePath, tokenizer, TextualInversion.ClipL)]);
        return model;
    }
}
