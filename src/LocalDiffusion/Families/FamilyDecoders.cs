using LocalDiffusion.Latents;
using System.Globalization;
using LocalDiffusion.Model;
using LocalDiffusion.Onnx;
using LocalDiffusion.Vae;

namespace LocalDiffusion.Families;

/// <summary>
/// The decoders of a family's model: the pictures' (the folder's vae_decoder/, or <see cref="PipelineOptions.VaeDecoderPath"/>'s,
/// a full VAE or a TAESD3/TAEF1) and the live previews' (<see cref="PipelineOptions.PreviewDecoderPath"/>, or the folder's
/// taesd/; null: the pictures' decoder). Found before the sessions open, so that each family lists the pictures' among its
/// components; the previews' opens on the first preview (<see cref="DeferredDecoder"/>).
/// </summary>
internal sealed record FamilyDecoders(VaeDecoderFile Pictures, VaeDecoderFile? Preview)
{
    /// <summary>The component name of the preview decoder.</summary>
    public const string PreviewComponent = "preview_decoder";

    /// <summary>Whether sessions are released between stages (<see cref="PipelineOptions.LowMemory"/>): the preview decoder's too.</summary>
    public bool LowMemory { get; init; }

    /// <summary>
    /// Finds both decoders; errors name the file at fault. <paramref name="folderDecoder"/>: the folder's own decoder when
    /// it is not vae_decoder/model.onnx (Black Forest Labs' vae.opt/).
    /// </summary>
    public static FamilyDecoders Find(FamilyFolder folder, PipelineOptions options, string? folderDecoder = null)
    {
        var pictures = options.VaeDecoderPath is { } path ? VaeDecoderFile.Open(path)
            : VaeDecoderFile.Describe(folderDecoder ?? folder.Model("vae_decoder", "the VAE decoder"));
        return new FamilyDecoders(pictures, VaeDecoderFile.ForPreviews(options, folder.Root, pictures)) { LowMemory = options.LowMemory };
    }

    /// <summary>The pictures' decoder on its opened session; a full VAE whose config states another scaling factor is refused.</summary>
    public VaeDecoder PicturesDecoder(OnnxComponent session, LatentFormat latents) => Create(Pictures, session, latents);

    /// <summary>
    /// The previews' decoder, opened on the first preview with the factory that opened <paramref name="loaded"/>, or null
    /// when previews use the pictures' decoder. Its config is checked now (scaling factor, latent channels).
    /// </summary>
    public DeferredDecoder? PreviewDecoder(IReadOnlyList<OnnxComponent> loaded, LatentFormat latents)
    {
        if (Preview is not { } file) return null;
        CheckScale(file, latents);
        var sessions = loaded[0].Sessions;
        var lowMemory = LowMemory;
        return new DeferredDecoder(file.ModelPath, file.Tiny, latents.Channels, () => DeferredDecoder.OpenWith(
            OnnxComponent.Load(PreviewComponent, file.ModelPath, sessions, lowMemory), session => new VaeDecoder(session, latents.Channels, file.Tiny)));
    }

    private static VaeDecoder Create(VaeDecoderFile file, OnnxComponent session, LatentFormat latents)
    {
        CheckScale(file, latents);
        return new VaeDecoder(session, latents.Channels, file.Tiny);
    }

    private static void CheckScale(VaeDecoderFile file, LatentFormat latents)
    {
        if (file is { ScalingFactor: { } scale, ConfigPath: { } config } && Math.Abs(scale - latents.ScalingFactor) > 1e-6f)
            throw new ModelLoadException(config,
                $"this VAE's scaling_factor is {scale.ToString(CultureInfo.InvariantCulture)}, but the model's latents are scaled by {latents.ScalingFactor.ToString(CultureInfo.InvariantCulture)}: the VAE belongs to another model family, whose latents mean something else.");
    }
}
