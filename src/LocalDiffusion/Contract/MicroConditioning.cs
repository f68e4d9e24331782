using System.Globalization;

namespace LocalDiffusion;

/// <summary>A size in pixels, for SDXL's <c>original_size</c> / <c>target_size</c> micro-conditioning.</summary>
/// <param name="Width">Width in pixels.</param>
/// <param name="Height">Height in pixels.</param>
public readonly record struct PixelSize(int Width, int Height)
{
    /// <summary>"WxH", as the CLI and the PNG parameters write it.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Width}x{Height}");
}

/// <summary>SDXL's <c>crops_coords_top_left</c>: how far from the top and from the left a training picture was cropped.</summary>
/// <param name="Top">Pixels cropped from the top.</param>
/// <param name="Left">Pixels cropped from the left.</param>
public readonly record struct CropCoordinates(int Top, int Left)
{
    /// <summary>"TOP,LEFT", as the CLI and the PNG parameters write it.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Top},{Left}");
}
