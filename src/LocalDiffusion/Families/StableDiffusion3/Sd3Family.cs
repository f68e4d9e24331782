using LocalDiffusion.Embeddings;
using LocalDiffusion.Latents;
using LocalDiffusion.Onnx;
using LocalDiffusion.Schedulers;
using LocalDiffusion.TextEncoder;
using LocalDiffusion.Vae;

namespace LocalDiffusion.Families.StableDiffusion3;

/// <summary>
/// Stable Diffusion 3 / 3.5 (diffusers' StableDiffusion3Pipeline exported to ONNX, optimum's layout): transformer/ (an
/// MMDiT), text_encoder/ and text_encoder_2/ (CLIP-L and CLIP-G with projection), an optional text_encoder_3/ (T5) with
/// tokenizer_3/, and a 16-channel VAE with scaling and shift factors.
/// </summary>
internal sealed class Sd3Family : DiffusionFamily
{
    public override string Name => "SD 3";

    // Img2Img/Inpaint folders hold the same components; ControlNet and the others hold more and are refused.
    public override bool Claims(FamilyFolder folder) =>
        folder.PipelineClass is "StableDiffusion3Pipeline" or "StableDiffusion3Img2ImgPipeline" or "StableDiffusion3InpaintPipeline"
        || (folder.PipelineClass is null && folder.Has("transformer") && folder.Has("text_encoder_3"));

    public override FamilyModel Open(FamilyFolder folder, SessionFactory sessions, PipelineOptions options, List<OnnxComponent> opened)
    {
        folder.RequireLayout("transformer", "a Stable Diffusion 3 pipeline (an MMDiT transformer, three text encoders)");
        var schedulers = options.Schedulers ?? SchedulerRegistry.Default;
        var scheduler = FamilyLoading.Scheduler(folder, schedulers);
        var tokenizer = FamilyLoading.Clip(folder.Directory("tokenizer", "CLIP-L's tokenizer"));
        var tokenizer2 = FamilyLoading.Clip(folder.Directory("tokenizer_2", "CLIP-G's tokenizer"));
        var t5Path = folder.OptionalModel("text_encoder_3");
        var decoders = FamilyDecoders.Find(folder, options);
        var components = new List<(string, string)>
        {
            ("text_encoder", folder.Model("text_encoder", "CLIP-L (CLIPTextModelWithProjection)")),
            ("text_encoder_2", folder.Model("text_encoder_2", "CLIP-G (CLIPTextModelWithProjection)")),
            ("transformer", folder.Model("transformer", "the SD 3 transformer (SD3Transformer2DModel)")),
            ("vae_decoder", decoders.Pictures.ModelPath),
        };
        if (t5Path is not null) components.Add(("text_encoder_3", t5Path));
        var loaded = ComponentLoader.LoadAll(sessions, components, opened);
        var t5 = t5Path is null ? null : new T5TextEncoder(loaded[4]);
        var t5Tokenizer = t5 is null ? null : FamilyLoading.T5(folder.Directory("tokenizer_3", "T5's SentencePiece tokenizer (spiece.model)"));
        var transformer = loaded[2];
        var latents = new LatentFormat(16,
            (float)folder.Number("vae_decoder", "scaling_factor", 1.5305), (float)folder.Number("vae_decoder", "shift_factor", 0.0609));
        var encoder = FamilyLoading.VaeEncoder(folder, sessions, options, opened, latents.Channels);
        // SD 3 medium's card: 1024², 28 steps, guidance 7; sample_size is the latent side ÷ 1 (128 → 1024 px).
        var native = (int)folder.Number("transformer", "sample_size", 128) * VaeDecoder.Factor;
        var model = new Sd3Model(new ClipTextEncoder(loaded[0]), tokenizer, new ClipTextEncoder(loaded[1]), tokenizer2, t5, t5Tokenizer, transformer,
            (int)folder.Number("transformer", "joint_attention_dim", transformer.Input("encoder_hidden_states").FixedDimension(2) ?? 4096))
        {
            Defaults = new FamilyDefaults(28, 7f, native, native, 256),
            Latents = latents,
            Decoder = decoders.PicturesDecoder(loaded[3], latents),
            PreviewDecoder = decoders.PreviewDecoder(loaded, latents),
            Encoder = encoder,
            SchedulerConfig = scheduler,
            Opened = [.. opened],
            TokenizerVocabularySize = tokenizer.VocabularySize,
            LoraComponents = [loaded[0], loaded[1], transformer],
            T5Component = "text_encoder_3",
        };
        // Textual inversion: CLIP-L and CLIP-G are SDXL's pair, so SDXL files (clip_l, clip_g) and one-set files of either width fit.
        model.LoadEmbeddings(options, [new EmbeddingSlot(loaded[0].Name, loaded[0].FilePath, tokenizer, TextualInversion.ClipL),
            new EmbeddingSlot(loaded[1].Name, loaded[1].FilePath, tokenizer2, TextualInversion.ClipG)]);
        return model;
    }
}
