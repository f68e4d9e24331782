using System.Globalization;
using System.Text.Json;
using LocalDiffusion.Imaging;
using LocalDiffusion.Server.Errors;
using LocalDiffusion.Server.Generation;
using LocalDiffusion.Server.Http;
using LocalDiffusion.Server.Models;
using Microsoft.AspNetCore.Http;

namespace LocalDiffusion.Server.Automatic1111;

/// <summary>
/// A1111's hires fix (txt2img's <c>enable_hr</c>): a first pass at width×height, its result enlarged (latents by a
/// "Latent" upscaler, or the decoded picture by Lanczos/Nearest), then img2img at the enlarged size for
/// <c>hr_second_pass_steps</c> steps at <c>denoising_strength</c> (StableDiffusionProcessingTxt2Img.sample_hr_pass).
/// </summary>
internal sealed record HiresFix(int Width, int Height, string Upscaler, HiresResize.LatentMode? Latent, int SecondSteps, int EngineSteps,
    float Strength, string? Sampler, string? Prompt, string? NegativePrompt, IReadOnlyDictionary<string, object> Params)
{
    /// <summary>The image upscalers A1111 has built in besides its latent modes.</summary>
    public static readonly string[] ImageUpscalers = ["None", "Lanczos", "Nearest"];

    /// <summary>The plan when <c>enable_hr</c> is true, else null; refuses what cannot run, naming the field, before any work.</summary>
    public static HiresFix? Parse(JsonElement json, GenerationRequest first, ServedModel model, ServerContext server)
    {
        var f = new JsonFields(json);
        if (f.Bool("enable_hr") != true) return null;
        var info = model.Pipeline.Info;
        var (width, height) = (first.Width ?? info.NativeWidth, first.Height ?? info.NativeHeight);
        var scale = f.Double("hr_scale", 1, 16) ?? 2.0;
        var resizeX = f.Int("hr_resize_x", 0, 8192) ?? 0;
        var resizeY = f.Int("hr_resize_y", 0, 8192) ?? 0;
        var parameters = new Dictionary<string, object>();
        int toW, toH;
        if (resizeX == 0 && resizeY == 0)
        {
            (toW, toH) = ((int)(width * scale), (int)(height * scale));
            parameters["Hires upscale"] = scale;
        }
        else
        {
            // One side 0 keeps the aspect ratio, as A1111 does; with both given the picture is stretched (A1111 crops).
            toW = resizeX != 0 ? resizeX : resizeY * width / height;
            toH = resizeY != 0 ? resizeY : resizeX * height / width;
            parameters["Hires resize"] = $"{resizeX}x{resizeY}";
        }
        // A1111 truncates to whole pixels; the engine also needs the model's size multiple.
        var multiple = info.SizeMultiple;
        (toW, toH) = (toW / multiple * multiple, toH / multiple * multiple);
        var sizeField = resizeX == 0 && resizeY == 0 ? "hr_scale" : resizeX != 0 ? "hr_resize_x" : "hr_resize_y";
        if (toW < width || toH < height)
            throw ApiException.BadRequest(sizeField, $"The hires size {toW}x{toH} is smaller than the first pass's {width}x{height}; the hires fix only enlarges.");
        server.Sizes.Check(model.Id, info, toW, toH, sizeField);

        var upscaler = f.String("hr_upscaler");
        HiresResize.LatentMode? latent = null;
        // Unset: A1111's default latent_upscale_default_mode, "Latent".
        if (upscaler is null) latent = HiresResize.LatentMode.Bilinear;
        else if (HiresResize.LatentModes.TryGetValue(upscaler, out var mode)) latent = mode;
        else if (!ImageUpscalers.Contains(upscaler, StringComparer.Ordinal))
            throw ApiException.BadRequest("hr_upscaler",
                $"hr_upscaler '{upscaler}' is not available: this server has no upscaler models; use one of {string.Join(", ", HiresResize.LatentModes.Keys.Concat(ImageUpscalers).Select(n => $"'{n}'"))}.");
        if (upscaler is not null) parameters["Hires upscaler"] = upscaler;

        // A1111's default denoising_strength for the hires pass.
        var strength = (float)(f.Double("denoising_strength", 0, 1) ?? 0.7);
        var secondSteps = f.Int("hr_second_pass_steps", 0, 1000) ?? 0;
        if (secondSteps > 0) parameters["Hires steps"] = secondSteps;
        var steps = secondSteps > 0 ? secondSteps : first.StepCount;
        if (strength <= 0)
            throw ApiException.BadRequest("denoising_strength", "denoising_strength 0 leaves the hires pass no step to run; raise it (A1111's default is 0.7).");
        var sampler = f.String("hr_sampler_name") is { Length: > 0 } s && s != first.Scheduler ? A1111Schedules.Combine(s, f.String("hr_scheduler") ?? f.String("scheduler")) : null;
        if (sampler is not null) parameters["Hires sampler"] = sampler;
        var prompt = f.String("hr_prompt") is { Length: > 0 } p && p != first.Prompt ? p : null;
        if (prompt is not null) parameters["Hires prompt"] = prompt;
        var negative = f.String("hr_negative_prompt") is { Length: > 0 } n && n != first.NegativePrompt ? n : null;
        if (negative is not null) parameters["Hires negative prompt"] = negative;
        parameters["Denoising strength"] = strength;
        return new HiresFix(toW, toH, upscaler ?? "Latent", latent, steps, StretchedSteps(steps, strength), strength, sampler, prompt, negative, parameters);
    }

    // A1111 runs exactly the hires steps, over a schedule stretched to steps / strength (setup_img2img_steps); the engine
    // runs int(total · strength) of total steps, so the smallest total that leaves the hires steps is asked for.
    private static int StretchedSteps(int steps, float strength)
    {
        var total = (int)(steps / strength);
        while ((int)(total * strength) < steps) total++;
        return total;
    }

    /// <summary>Runs both passes for one batch; an interrupted first pass is answered with its pictures, as A1111 does.</summary>
    public async Task<GenerationOutcome> RunAsync(HttpContext context, ServerContext server, ServedModel model, GenerationRequest request)
    {
        var first = await server.Generator.GenerateAsync(context, model, request, sizeField: "width", finishOnInterrupt: true);
        if (first.Interrupted) return first;
        var result = first.Result;
        var shape = result.LatentShape;
        var (channels, latentH, latentW) = (shape[1], shape[2], shape[3]);
        var factor = result.Images[0].Width / latentW;
        var perImage = channels * latentH * latentW;
        var images = new List<GeneratedImage>();
        var interrupted = false;
        // One image at a time: each keeps its own seed (SeedPerImage cannot come with InitLatents) and its own init picture.
        for (var j = 0; j < result.Images.Count && !interrupted; j++)
        {
            var seed = result.Seeds.Count > j ? result.Seeds[j] : result.Seed;
            var second = request with
            {
                Width = Width, Height = Height, ImageCount = 1, Seed = seed, SeedPerImage = false, PreviewSteps = null,
                Steps = EngineSteps, Strength = Strength, Scheduler = Sampler ?? request.Scheduler,
                Prompt = Prompt ?? request.Prompt, NegativePrompt = NegativePrompt ?? request.NegativePrompt,
            };
            second = Latent is { } mode
                ? second with { InitLatents = HiresResize.Latents(result.FinalLatents.AsSpan(j * perImage, perImage), channels, latentH, latentW, Height / factor, Width / factor, mode) }
                : second with { InitImage = HiresResize.Picture(result.Images[j], Width, Height, Upscaler == "Nearest") };
            var outcome = await server.Generator.GenerateAsync(context, model, second, sizeField: "hr_scale", finishOnInterrupt: true);
            interrupted = outcome.Interrupted;
            var image = outcome.Result.Images[0];
            images.Add(new GeneratedImage(image.Width, image.Height, image.Rgb, Infotext(result.Images[j].Parameters)));
        }
        return first with { Result = result with { Images = images }, Interrupted = interrupted };
    }

    // The first pass's infotext (its steps, sampler and size, as A1111 writes them) with the hires fields added.
    private string? Infotext(string? firstPass)
    {
        if (firstPass is null) return null;
        var fields = string.Concat(Params.Select(p => $", {p.Key}: {Quote(p.Value)}"));
        var at = firstPass.LastIndexOf(", RNG: ", StringComparison.Ordinal);
        return at < 0 ? firstPass + fields : firstPass.Insert(at, fields);
    }

    // A1111 quotes values that would break the comma-separated list (json.dumps).
    private static string Quote(object value)
    {
        var text = Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";
        return text.IndexOfAny([',', ':', '"', '\n']) >= 0 ? JsonSerializer.Serialize(text) : text;
    }
}
