namespace LocalDiffusion.Latents;

/// <summary>A family's latent space: channels, and how the VAE's latents are scaled and shifted (x_vae = x / scaling + shift).</summary>
/// <param name="Channels">Latent channels (4 for SD 1.x/2.x/XL, 16 for SD 3 and FLUX).</param>
/// <param name="ScalingFactor">The VAE config's <c>scaling_factor</c>.</param>
/// <param name="ShiftFactor">The VAE config's <c>shift_factor</c> (0 where it has none).</param>
internal sealed record LatentFormat(int Channels, float ScalingFactor, float ShiftFactor);
