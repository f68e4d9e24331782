using System.Globalization;
using System.Numerics.Tensors;
using LocalDiffusion.Denoising;
using LocalDiffusion.Latents;
using LocalDiffusion.Randomness;
using LocalDiffusion.Schedulers;
using LocalDiffusion.Vae;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Families;

/// <summary>
/// The starting latents of a flow-matching family's img2img and inpainting, in the order diffusers v0.31.0's
/// StableDiffusion3Img2ImgPipeline / StableDiffusion3InpaintPipeline / FluxImg2ImgPipeline / FluxInpaintPipeline draw from
/// the generator: the init image encoded once (a posterior sample), (x − shift)·scaling, repeated for the batch; then
/// noise = randn([n,C,h,w]); then <c>scale_noise</c> to the first remaining timestep. With a mask, after every step the kept
/// region is replaced by the image latents noised to the next timestep with that same noise (<see cref="InpaintBlend"/>,
/// the 16-channel transformers' blend). <see cref="GenerationRequest.InitLatents"/> stand for the encoded image as SD 3's
/// img2img takes a 16-channel <c>image</c>: no encode and no posterior draw, so the noise is the first draw.
/// </summary>
internal static class FlowImageLatents
{
    /// <summary>diffusers' default <c>strength</c> in all four pipelines.</summary>
    public const float DefaultStrength = 0.6f;

    /// <summary>
    /// The four pipelines' <c>get_timesteps</c>: t_start = int(max(n − min(n·strength, n), 0)), begin index t_start·order,
    /// n − t_start steps left. Unlike SD 1.x's int(n·strength) this rounds the skipped part down, so any strength &gt; 0
    /// leaves a step. The float strength is read as the decimal it prints as (0.6f → 0.6), as a Python float would hold it.
    /// </summary>
    public static (int BeginIndex, int StepsLeft) BeginIndex(int steps, float strength, int order)
    {
        var s = double.Parse(strength.ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);
        var start = (int)Math.Max(steps - Math.Min(steps * s, steps), 0);
        return (start * order, steps - start);
    }

    /// <summary>
    /// Encodes (or takes) the init latents, draws the noise and noises them to <paramref name="beginIndex"/>; sets up the blend
    /// when the request has a mask. <paramref name="pixels"/>: the init image as CHW in [−1, 1] at the output size.
    /// </summary>
    public static PreparedLatents Prepare(GenerationRequest request, FlowFamilyModel model, IFlowMatchScheduler scheduler, int beginIndex,
        float[]? pixels, TorchGenerator generator, int images, int latentHeight, int latentWidth, RunOptions runOptions)
    {
        var format = model.Latents;
        var item = format.Channels * latentHeight * latentWidth;
        var imageLatents = new float[images * item];
        if (pixels is not null)
        {
            var encoder = model.Encoder ?? throw new InvalidOperationException("Validate refuses an InitImage without a VAE encoder.");
            using var lease = encoder.Use();
            var encoded = encoder.Encode(pixels, latentHeight, latentWidth, generator, runOptions);
            TensorPrimitives.Subtract(encoded, format.ShiftFactor, encoded);
            TensorPrimitives.Multiply(encoded, format.ScalingFactor, encoded);
            for (var i = 0; i < images; i++) encoded.CopyTo(imageLatents, i * item);
        }
        else
        {
            var given = request.InitLatents ?? throw new InvalidOperationException("Prepare needs pixels or InitLatents.");
            for (var offset = 0; offset < imageLatents.Length; offset += given.Length)
                given.CopyTo(imageLatents, offset);
        }

        var noise = new float[images * item];
        generator.FillNormal(noise);
        var latents = new float[images * item];
        scheduler.ScaleNoise(imageLatents, noise, beginIndex, latents);
        if (request.MaskImage is not { } mask)
            return new PreparedLatents(latents, beginIndex, null, null);
        // The masked image diffusers encodes next only feeds 33-channel transformers; with 16 channels it just advances the
        // generator, which no later draw reads (flow Euler/Heun steps are deterministic), so it is not encoded here.
        int width = latentWidth * VaeDecoder.Factor, height = latentHeight * VaeDecoder.Factor;
        var latentMask = InpaintMask.ToLatent(mask.Resize(width, height), latentHeight, latentWidth, request.MaskBlur);
        return new PreparedLatents(latents, beginIndex, new InpaintBlend(imageLatents, noise, latentMask, scheduler), null);
    }
}
