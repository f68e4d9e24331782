using LocalDiffusion.Imaging;

namespace LocalDiffusion.ControlNet;

/// <summary>
/// The picture a ControlNet sees: the unit's image through its preprocessor, resized to the output size (as diffusers'
/// control image processor resizes to height × width, by Lanczos as it
/// does init images), as RGB planes in [0, 1] (diffusers' <c>do_normalize=False</c>).
/// </summary>
internal static class ControlImage
{
    public static InitImage Preprocess(ControlNetUnit unit) => unit.Preprocessor switch
    {
        ControlPreprocessor.Canny => CannyEdges.Detect(unit.Image, unit.CannyLowThreshold, unit.CannyHighThreshold),
        _ => unit.Image,
    };

    /// <summary>[3, height, width] floats in [0, 1].</summary>
    public static float[] Prepare(ControlNetUnit unit, int width, int height)
    {
        var picture = Preprocess(unit).Resize(width, height);
        var plane = width * height;
        var chw = new float[3 * plane];
        for (var p = 0; p < plane; p++)
            for (var c = 0; c < 3; c++)
                chw[c * plane + p] = picture.Rgb[p * 3 + c] / 255f;
        return chw;
    }
}
