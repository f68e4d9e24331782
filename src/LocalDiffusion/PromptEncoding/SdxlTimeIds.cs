namespace LocalDiffusion.PromptEncoding;

/// <summary>
/// SDXL's micro-conditioning, the UNet's <c>time_ids</c>, as diffusers' <c>_get_add_time_ids</c> builds them: base
/// (original height, width, crop top, left, target height, width), diffusers' defaults (image size, no crop, image
/// size); the refiner (original height, width, crop top, left, aesthetic score), 6 for the prompt and 2.5 for the negative.
/// </summary>
internal static class SdxlTimeIds
{
    /// <summary>diffusers' StableDiffusionXLImg2ImgPipeline defaults.</summary>
    public const float AestheticScore = 6f, NegativeAestheticScore = 2.5f;

    /// <summary>The time ids of each prompt in <c>[negative, prompt]</c> order (<paramref name="promptCount"/> 1 or 2).</summary>
    public static float[][] For(int promptCount, bool refiner, int height, int width)
    {
        var result = new float[promptCount][];
        for (var p = 0; p < promptCount; p++)
        {
            var negative = p < promptCount - 1;
            result[p] = refiner
                ? [height, width, 0, 0, negative ? NegativeAestheticScore : AestheticScore]
                : [height, width, 0, 0, height, width];
        }
        return result;
    }
}
