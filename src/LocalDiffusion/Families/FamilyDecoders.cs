using LocalDiffusion.Latents;
using System.Globalization;
using LocalDiffusion.Model;
using LocalDiffusion.Onnx;
using LocalDiffusion.Vae;

namespace LocalDiffusion.Families;

/// <summary>
/// The decoders of a family's model: the pictures' (the folder's vae_decoder/, or <see cref="PipelineOptions.VaeDecoderPath"/>'s,
/// a full VAE or a TAESD3/TAEF1) and the live previews' (<see cref="PipelineOptions.PreviewDecoderPath"/>, or the folder's
/// taesd/; null: the pictures' decoder). Found before the sessions open, so that each family lists them among its components.
/// </summary>
internal sealed record FamilyDecoders(VaeDecoderFile Pictures, VaeDecoderFile? Preview)
{
    /// <summary>The component name of the preview decoder.</summary>
    public const string PreviewComponent = "preview_decoder";

    /// <summary>
    /// Finds both decoders; errors name the file at fault. <paramref name="folderDecoder"/>: the folder's own decoder when
    /// it is not vae_decoder/model.onnx (Black Forest Labs' vae.opt/).
    /// </summary>
    public static FamilyDecoders Find(FamilyFolder folder, PipelineOptions options, string? folderDecoder = null)
    {
        var pictures = options.VaeDecoderPath is { } path ? VaeDecoderFile.Open(path)
            : VaeDecoderFile.Describe(folderDecoder ?? folder.Model("vae_decoder", "the VAE decoder"));
        return new FamilyDecoders(pictures, VaeDecoderFile.ForPreviews(options, folder.Root, pictures));
    }

    /// <summary>Adds the preview decoder's session to open, when there is one: last, where <see cref="PreviewDecoder"/> finds it.</summary>
    public void AddPreview(List<(string Name, string Path)> components)
    {
        if (Preview is not null) components.Add((PreviewComponent, Preview.ModelPath));
    }

    /// <summary>The pictures' decoder on its opened session; a full VAE whose config states another scaling factor is refused.</summary>
    public VaeDecoder PicturesDecoder(OnnxComponent session, LatentFormat latents) => Create(Pictures, session, latents);

    /// <summary>The previews' decoder on the last opened session, or null when previews use the pictures' decoder.</summary>
    public VaeDecoder? PreviewDecoder(IReadOnlyList<OnnxComponent> loaded, LatentFormat latents) =>
        Preview is null ? null : Create(Preview, loaded[^1], latents);

    private static VaeDecoder Create(VaeDecoderFile file, OnnxComponent session, LatentFormat latents)
    {
        if (file is { ScalingFactor: { } scale, ConfigPath: { } config } && Math.Abs(scale - latents.ScalingFactor) > 1e-6f)
            throw new ModelLoadException(config,
                $"this VAE's scaling_factor is {scale.ToString(CultureInfo.InvariantCulture)}, but the model's latents are scaled by {latents.ScalingFactor.ToString(CultureInfo.InvariantCulture)}: the VAE belongs to another model family, whose latents mean something else.");
        return new VaeDecoder(session, latents.Channels, file.Tiny);
    }
}
