using LocalDiffusion.Pipeline;
using LocalDiffusion.Errors;
using System.Text.Json;
using LocalDiffusion.Imaging;
using LocalDiffusion.Server.Errors;
using LocalDiffusion.Server.Generation;
using LocalDiffusion.Server.Http;
using LocalDiffusion.Server.Models;
using LocalDiffusion.Upscaling;
using Microsoft.AspNetCore.Http;

namespace LocalDiffusion.Server.Automatic1111;

/// <summary>
/// A1111's hires fix (txt2img's <c>enable_hr</c>) through the server's queue: the engine's <see cref="HiresPlan"/> decides
/// sizes, steps and the enlargement; each pass is one queued generation (so progress, previews and interrupt work).
/// </summary>
internal sealed record HiresFix(HiresPlan Plan)
{
    /// <summary>The hires strength, as A1111 reports <c>denoising_strength</c>.</summary>
    public float Strength => Plan.Options.Strength;

    /// <summary>What A1111 adds to the infotext and to <c>extra_generation_params</c>.</summary>
    public IReadOnlyDictionary<string, object> Params => Plan.Parameters;

    /// <summary>The plan when <c>enable_hr</c> is true, else null; refuses what cannot run, naming the field, before any work.</summary>
    public static HiresFix? Parse(JsonElement json, GenerationRequest first, ServedModel model, ServerContext server)
    {
        var f = new JsonFields(json);
        if (f.Bool("enable_hr") != true) return null;
        var info = model.Pipeline.Info;
        var (width, height) = (first.Width ?? info.NativeWidth, first.Height ?? info.NativeHeight);
        var upscaler = f.String("hr_upscaler");
        ImageUpscaler? upscalerModel = null;
        if (upscaler is not null && !LatentResize.Modes.ContainsKey(upscaler) && !HiresPlan.BuiltInUpscalers.Contains(upscaler))
            upscalerModel = server.Upscalers.Find(upscaler) ?? throw ApiException.BadRequest("hr_upscaler",
                $"hr_upscaler '{upscaler}' is not available; use one of {string.Join(", ", LatentResize.Modes.Keys.Concat(server.Upscalers.Names).Select(n => $"'{n}'"))}.");
        var sampler = f.String("hr_sampler_name") is { Length: > 0 } s && s != first.Scheduler ? A1111Schedules.Combine(s, f.String("hr_scheduler") ?? f.String("scheduler")) : null;
        var options = new HiresOptions
        {
            Scale = f.Double("hr_scale", 1, 16) ?? 2.0,
            ResizeWidth = f.Int("hr_resize_x", 0, 8192) ?? 0,
            ResizeHeight = f.Int("hr_resize_y", 0, 8192) ?? 0,
            Upscaler = upscaler,
            Model = upscalerModel,
            // A1111's default denoising_strength for the hires pass.
            Strength = (float)(f.Double("denoising_strength", 0, 1) ?? 0.7),
            SecondPassSteps = f.Int("hr_second_pass_steps", 0, 1000) ?? 0,
            Scheduler = sampler,
            Prompt = f.String("hr_prompt") is { Length: > 0 } p && p != first.Prompt ? p : null,
            NegativePrompt = f.String("hr_negative_prompt") is { Length: > 0 } n && n != first.NegativePrompt ? n : null,
        };
        HiresPlan plan;
        try
        {
            plan = HiresPlan.Create(options, width, height, first.StepCount, info.SizeMultiple);
        }
        catch (InvalidRequestException e) when (e.Culprit.Field is { } field && field.StartsWith("Hires.", StringComparison.Ordinal))
        {
            throw ApiException.BadRequest(RequestFields.NameIn(field, FrontEnd.Automatic1111), e.Message);
        }
        var sizeField = options.ResizeWidth == 0 && options.ResizeHeight == 0 ? "hr_scale" : options.ResizeWidth != 0 ? "hr_resize_x" : "hr_resize_y";
        server.Sizes.Check(model.Id, info, plan.Width, plan.Height, sizeField);
        return new HiresFix(plan);
    }

    /// <summary>Runs both passes for one batch; an interrupted first pass is answered with its pictures, as A1111 does.</summary>
    public async Task<GenerationOutcome> RunAsync(HttpContext context, ServerContext server, ServedModel model, GenerationRequest request)
    {
        var first = await server.Generator.GenerateAsync(context, model, request, sizeField: "width", finishOnInterrupt: true);
        if (first.Interrupted) return first;
        var result = first.Result;
        var images = new List<GeneratedImage>();
        var interrupted = false;
        // One image at a time: each keeps its own seed (SeedPerImage cannot come with InitLatents) and its own init picture.
        for (var j = 0; j < result.Images.Count && !interrupted; j++)
        {
            var second = await Plan.SecondPassAsync(request, result, j, context.RequestAborted);
            var outcome = await server.Generator.GenerateAsync(context, model, second, sizeField: "hr_scale", finishOnInterrupt: true);
            interrupted = outcome.Interrupted;
            var image = outcome.Result.Images[0];
            images.Add(new GeneratedImage(image.Width, image.Height, image.Rgb, Plan.Infotext(result.Images[j].Parameters)));
        }
        return first with { Result = result with { Images = images }, Interrupted = interrupted };
    }
}
