namespace LocalDiffusion.Upscaling;

/// <summary>How latents are interpolated when the hires fix enlarges them (torch's <c>F.interpolate</c> modes, align_corners false).</summary>
public enum LatentUpscaleMode
{
    /// <summary>Bilinear (A1111's "Latent" and "Latent (antialiased)": antialiasing changes only a shrink).</summary>
    Bilinear,

    /// <summary>Bicubic with Keys' a = −0.75 (A1111's "Latent (bicubic)").</summary>
    Bicubic,

    /// <summary>Bicubic with a = −0.5, torch's antialiased kernel (A1111's "Latent (bicubic antialiased)").</summary>
    BicubicAntialiased,

    /// <summary>torch's "nearest": source index ⌊i·from/to⌋ (A1111's "Latent (nearest)").</summary>
    Nearest,

    /// <summary>torch's "nearest-exact": source index ⌊(i + ½)·from/to⌋ (A1111's "Latent (nearest-exact)").</summary>
    NearestExact,
}
