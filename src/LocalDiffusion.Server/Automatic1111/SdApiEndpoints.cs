using LocalDiffusion.Pipeline;
using System.Text.Json;
using System.Text.Json.Nodes;
using LocalDiffusion.Imaging;
using LocalDiffusion.Server.Errors;
using LocalDiffusion.Server.Generation;
using LocalDiffusion.Server.Http;
using LocalDiffusion.Server.Models;
using LocalDiffusion.Server.Uploads;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LocalDiffusion.Server.Automatic1111;

/// <summary>
/// The part of AUTOMATIC1111's <c>/sdapi/v1</c> API that clients use: txt2img, progress, interrupt, samplers,
/// schedulers, sd-models and options, and img2img (with inpainting masks). Unknown fields are ignored, as A1111 does.
/// </summary>
internal static class SdApiEndpoints
{
    public static void Map(IEndpointRouteBuilder app, ServerContext server)
    {
        app.MapPost("/sdapi/v1/txt2img", (HttpContext context) => Txt2ImgAsync(context, server));
        app.MapPost("/sdapi/v1/img2img", (HttpContext context) => Img2ImgAsync(context, server));
        app.MapGet("/sdapi/v1/progress", (HttpContext context) => Progress(context, server));
        app.MapPost("/sdapi/v1/interrupt", () => Results.Json(new { interrupted = server.Active.InterruptAll() }));
        app.MapPost("/sdapi/v1/skip", () => Results.Json(new { interrupted = server.Active.InterruptAll() }));
        app.MapGet("/sdapi/v1/samplers", () => Results.Json(Schedulers.SchedulerRegistry.Default.All.Select(s => new
        {
            name = s.DisplayName,
            aliases = s.Aliases.Prepend(s.Id).Distinct().ToArray(),
            options = new Dictionary<string, string>(),
        })));
        app.MapGet("/sdapi/v1/schedulers", () => Results.Json(A1111Schedules.List));
        app.MapGet("/sdapi/v1/sd-models", () => Results.Json(server.Catalog.All.Select(m => new
        {
            title = m.Id,
            model_name = m.Id,
            hash = (string?)null,
            sha256 = (string?)null,
            filename = m.Path,
            config = (string?)null,
        })));
        app.MapGet("/sdapi/v1/options", () => Results.Json(new Dictionary<string, object?>
        {
            ["sd_model_checkpoint"] = server.A1111Model.Id,
            ["sd_vae"] = SdApiListings.VaeName(server.Options) ?? "Automatic",
            ["samples_format"] = "png",
            ["live_previews_enable"] = true,
            // A1111's live preview method: "TAESD" when the previews come from a tiny autoencoder, "Full" from the VAE.
            ["show_progress_type"] = PreviewMethod(server, server.A1111Model),
        }));
        app.MapPost("/sdapi/v1/options", async (HttpContext context) =>
        {
            var json = await JsonBody.ReadObjectAsync(context, server.Options.MaxJsonBodyBytes);
            if (new JsonFields(json).String("sd_model_checkpoint") is { } checkpoint)
                server.A1111Model = server.Catalog.Get(StripHash(checkpoint));
            return Results.Text("null", "application/json");
        });
        app.MapPost("/sdapi/v1/refresh-checkpoints", () => Results.Text("null", "application/json"));
        SdApiListings.Map(app, server);
        PngInfoEndpoint.Map(app, server);
        ControlNets.A1111ControlNetScript.Map(app, server);
        ExtrasEndpoint.Map(app, server);
    }

    private const long PreviewPollWindowMs = 60_000;

    // What decodes the model's previews: its loaded pipeline says; before it has loaded, the options and the folder do.
    private static string PreviewMethod(ServerContext server, ServedModel model)
    {
        if (model.IsReady) return model.Pipeline.Info.PreviewDecoderKind == "TAESD" ? "TAESD" : "Full";
        if (server.Options.FullVaePreviews) return "Full";
        var shipsTaesd = Directory.Exists(Path.Combine(model.Path, global::LocalDiffusion.Model.VaeDecoderFile.ModelTinyFolder))
            || global::LocalDiffusion.Model.VaeDecoderFile.TinyDecoderFileNames.Any(n => File.Exists(Path.Combine(model.Path, n)));
        return server.Options.PreviewDecoderPath is not null || shipsTaesd ? "TAESD" : "Full";
    }

    // A1111 model titles look like "name.safetensors [hash]"; clients echo them back.
    private static string StripHash(string title) => title.Split(" [")[0];

    private static async Task Txt2ImgAsync(HttpContext context, ServerContext server)
    {
        var json = await JsonBody.ReadObjectAsync(context, server.Options.MaxJsonBodyBytes);
        var (model, request, batch) = ParseCommon(json, server, defaultToNativeSize: true);
        request = ControlNets.A1111ControlNetScript.Apply(json, request, server, request.Width!.Value, request.Height!.Value);
        var hires = HiresFix.Parse(json, request, model, server);
        if (hires is not null && batch.Refiner is not null)
            throw ApiException.BadRequest("refiner_checkpoint", "enable_hr with a refiner_checkpoint is not supported here; send one or the other.");
        await GenerateAndReplyAsync(context, server, model, request, batch, json, hires);
    }

    /// <summary>
    /// img2img and inpainting: <c>init_images[0]</c> (base64, optionally a data: URL) at <c>denoising_strength</c>, with an
    /// optional <c>mask</c> (white = repaint; an RGBA mask with transparency repaints its opaque pixels, as A1111's
    /// create_binary_mask does), <c>mask_blur</c> and <c>inpainting_mask_invert</c>.
    /// </summary>
    private static async Task Img2ImgAsync(HttpContext context, ServerContext server)
    {
        var json = await JsonBody.ReadObjectAsync(context, server.Options.MaxImg2ImgJsonBytes);
        var f = new JsonFields(json);
        var (model, request, batch) = ParseCommon(json, server, defaultToNativeSize: false);
        if (!json.TryGetProperty("init_images", out var initImages) || initImages.ValueKind != JsonValueKind.Array || initImages.GetArrayLength() == 0)
            throw ApiException.BadRequest("init_images", "Missing required parameter: 'init_images' (a list holding one base64 PNG or JPEG).", "missing_required_parameter");
        if (initImages[0].ValueKind != JsonValueKind.String)
            throw ApiException.BadRequest("init_images", "'init_images' must hold base64 strings.", "invalid_type");
        var init = UploadedImage.DecodeBase64(initImages[0].GetString()!, "init_images");
        // A1111's default denoising_strength is 0.75, for img2img and inpainting alike.
        var strength = (float)(f.Double("denoising_strength", 0, 1) ?? 0.75);
        if ((int)(request.StepCount * strength) < 1)
            throw ApiException.BadRequest("denoising_strength",
                $"denoising_strength {strength} with {request.Steps} steps leaves no step to run (int(steps·strength) = 0); raise steps or denoising_strength.");
        var resizeMode = f.Int("resize_mode", 0, 3) ?? 0;
        if (resizeMode != 0)
            throw ApiException.BadRequest("resize_mode", $"resize_mode {resizeMode} is not supported: only 0 (just resize: the picture is stretched to width×height) is.");
        // inpainting_fill (0 fill, 1 original, 2 latent noise, 3 latent nothing) is accepted: the engine always starts the
        // masked area from the noised original (1); at denoising_strength 1 that is pure noise, as 2 gives.
        _ = f.Int("inpainting_fill", 0, 3);
        var invert = f.Int("inpainting_mask_invert", 0, 1) == 1;
        InitImage? mask = null;
        if (f.String("mask") is { Length: > 0 } maskText)
        {
            var upload = UploadedImage.DecodeBase64(maskText, "mask");
            mask = upload.HasTransparentPixel() ? upload.MaskFromAlpha(alpha => alpha > 128 != invert) : Grey(upload, invert);
        }
        request = request with
        {
            InitImage = init.ToInitImage(),
            MaskImage = mask,
            Strength = strength,
            MaskBlur = mask is null ? 0 : (float)(f.Double("mask_blur", 0, 64) ?? 4),
        };
        request = ControlNets.A1111ControlNetScript.Apply(json, request, server, request.Width ?? init.Width, request.Height ?? init.Height);
        // A1111 echoes the request as parameters, without the pictures unless include_init_images is set.
        var echo = JsonNode.Parse(json.GetRawText())!.AsObject();
        if (f.Bool("include_init_images") != true)
        {
            echo["init_images"] = null;
            echo["mask"] = null;
        }
        await GenerateAndReplyAsync(context, server, model, request, batch, JsonSerializer.SerializeToElement(echo));
    }

    /// <summary>An A1111 mask without transparency: its luminance (the engine repaints ≥ 128), inverted on request.</summary>
    private static InitImage Grey(UploadedImage upload, bool invert)
    {
        var rgb = upload.ToInitImage().Rgb;
        if (invert)
            for (var i = 0; i < rgb.Length; i++)
                rgb[i] = (byte)(255 - rgb[i]);
        return new InitImage(upload.Width, upload.Height, rgb);
    }

    private readonly record struct Batching(int BatchSize, int Iterations, long Seed, RefinerChoice? Refiner);

    /// <summary>The fields txt2img and img2img share: model, prompts, sampler, steps, cfg_scale, size, batch and seed.</summary>
    private static (ServedModel Model, GenerationRequest Request, Batching Batch) ParseCommon(JsonElement json, ServerContext server, bool defaultToNativeSize)
    {
        var f = new JsonFields(json);
        var model = server.A1111Model;
        if (f.Object("override_settings") is { } overrides && new JsonFields(overrides).String("sd_model_checkpoint") is { } checkpoint)
            model = server.Catalog.Get(StripHash(checkpoint));
        var pipeline = model.Pipeline;
        var sampler = A1111Schedules.Combine(f.String("sampler_name") ?? f.String("sampler_index"), f.String("scheduler"));
        var batchSize = f.Int("batch_size", 1, 64) ?? 1;
        var iterations = f.Int("n_iter", 1, 100) ?? 1;
        var seed = f.Long("seed", -1, uint.MaxValue) ?? -1;
        if (seed == -1) seed = Random.Shared.NextInt64(0, uint.MaxValue);
        var request = new GenerationRequest
        {
            Prompt = f.String("prompt") ?? "",
            NegativePrompt = f.String("negative_prompt") ?? "",
            // Unset: the model's defaults (A1111's own 20 steps at cfg 7 would run a Turbo or LCM model all wrong).
            Steps = f.Int("steps", 1, 1000) ?? pipeline.Info.Family.DefaultSteps,
            GuidanceScale = (float)(f.Double("cfg_scale", 0, 100) ?? pipeline.Info.Family.DefaultGuidanceScale),
            // img2img without a size makes the init image's size (rounded down to the model's multiple), not A1111's 512.
            Width = f.Int("width", 8, 4096) ?? (defaultToNativeSize ? pipeline.Info.NativeWidth : null),
            Height = f.Int("height", 8, 4096) ?? (defaultToNativeSize ? pipeline.Info.NativeHeight : null),
            ImageCount = batchSize,
            Scheduler = sampler,
        };
        return (model, request, new Batching(batchSize, iterations, seed, ParseRefiner(f, server)));
    }

    // A1111's refiner fields: a served model by name ("" or "None": none) and the fraction of the steps the base runs.
    private static RefinerChoice? ParseRefiner(JsonFields f, ServerContext server)
    {
        var name = f.String("refiner_checkpoint");
        var switchAt = f.Double("refiner_switch_at", 0, 1);
        if (string.IsNullOrEmpty(name) || string.Equals(name, "None", StringComparison.OrdinalIgnoreCase)) return null;
        if (switchAt is <= 0 or >= 1)
            throw ApiException.BadRequest("refiner_switch_at", $"refiner_switch_at is {switchAt}; it must be a fraction strictly between 0 and 1 (e.g. 0.8).");
        return new RefinerChoice(server.Catalog.Get(StripHash(name)), (float)(switchAt ?? 0.8));
    }

    private static async Task GenerateAndReplyAsync(HttpContext context, ServerContext server, ServedModel model, GenerationRequest request,
        Batching batch, JsonElement parameters, HiresFix? hires = null)
    {
        var (batchSize, iterations, seed) = (batch.BatchSize, batch.Iterations, batch.Seed);
        // Previews for /sdapi/v1/progress's current_image, at a quarter, half and three quarters of the way, only while
        // some client polls for them: each costs a VAE decode, seconds for SD 1.5 on a CPU.
        if (Environment.TickCount64 - server.LastPreviewPoll < PreviewPollWindowMs)
            request = request with { PreviewSteps = OpenAi.ImageGenerationBody.PreviewSteps(request.PreviewableSteps, 3) };

        var images = new List<string>();
        var infotexts = new List<string>();
        var seeds = new List<long>();
        string samplerName = "";
        int? width = request.Width, height = request.Height;
        var interrupted = false;
        // n_iter batches run one after another, seed + batch_size × iteration each, as A1111 numbers them.
        for (var i = 0; i < iterations && !interrupted; i++)
        {
            try
            {
                // Image j of the batch is seed + j, as A1111 numbers it (a hand-off to a refiner shares one generator).
                var iteration = request with { Seed = seed + (long)i * batchSize, SeedPerImage = batch.Refiner is null };
                var outcome = hires is not null ? await hires.RunAsync(context, server, model, iteration)
                    : await server.Generator.GenerateAsync(context, model, iteration, refiner: batch.Refiner, sizeField: "width", finishOnInterrupt: true);
                interrupted = outcome.Interrupted;
                samplerName = outcome.Result.Scheduler;
                for (var j = 0; j < outcome.Result.Images.Count; j++)
                {
                    var image = outcome.Result.Images[j];
                    images.Add(Convert.ToBase64String(image.EncodePng()));
                    infotexts.Add(image.Parameters ?? "");
                    seeds.Add(outcome.Result.Seeds.Count > j ? outcome.Result.Seeds[j] : outcome.Result.Seed);
                    // With the hires fix A1111 reports the first pass's size here (the pictures are at the hires size).
                    if (hires is null) (width, height) = (image.Width, image.Height);
                }
            }
            catch (GenerationInterruptedException)
            {
                interrupted = true; // a hand-off, which cannot stop half-way: A1111 answers an interrupted job with what it has
            }
        }
        var info = new Dictionary<string, object?>
        {
            ["prompt"] = request.Prompt,
            ["all_prompts"] = images.Select(_ => request.Prompt),
            ["negative_prompt"] = request.NegativePrompt,
            ["all_negative_prompts"] = images.Select(_ => request.NegativePrompt),
            ["seed"] = seed,
            ["all_seeds"] = seeds,
            ["subseed"] = -1,
            ["all_subseeds"] = seeds.Select(_ => -1),
            ["subseed_strength"] = 0,
            ["width"] = width,
            ["height"] = height,
            ["sampler_name"] = samplerName,
            ["cfg_scale"] = request.GuidanceScale,
            ["steps"] = request.Steps,
            ["batch_size"] = batchSize,
            ["restore_faces"] = false,
            ["sd_model_name"] = model.Id,
            ["sd_model_hash"] = null,
            ["seed_resize_from_w"] = -1,
            ["seed_resize_from_h"] = -1,
            ["denoising_strength"] = hires?.Strength ?? (request.InitImage is null ? null : request.Strength),
            ["extra_generation_params"] = hires?.Params ?? (request.MaskImage is null ? new Dictionary<string, object>() : new Dictionary<string, object> { ["Mask blur"] = request.MaskBlur }),
            ["index_of_first_image"] = 0,
            ["infotexts"] = infotexts,
            ["styles"] = Array.Empty<string>(),
            ["job_timestamp"] = DateTime.UtcNow.ToString("yyyyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture),
            ["clip_skip"] = 1,
            ["is_using_inpainting_conditioning"] = request.MaskImage is not null && !model.Pipeline.Info.Tasks.Contains("text-to-image"),
            ["version"] = "LocalDiffusion",
            ["interrupted"] = interrupted,
        };
        await Results.Json(new
        {
            images,
            parameters,
            info = JsonSerializer.Serialize(info, ErrorWriter.Json),
        }).ExecuteAsync(context);
    }

    private static IResult Progress(HttpContext context, ServerContext server)
    {
        var running = server.Active.Snapshot();
        var current = running.FirstOrDefault();
        var skipImage = context.Request.Query["skip_current_image"].ToString().Equals("true", StringComparison.OrdinalIgnoreCase);
        if (!skipImage) server.LastPreviewPoll = Environment.TickCount64;
        double progress = 0, eta = 0;
        var step = 0;
        var steps = 0;
        string? image = null;
        if (current is not null)
        {
            progress = current.Fraction;
            var p = current.Progress;
            // Counted as A1111 counts them: sampler steps, not UNet evaluations (Heun's 150 steps are 299 evaluations).
            step = p?.SamplerStep ?? 0;
            steps = p is { TotalSteps: > 0 } ? p.SamplerSteps : current.Steps;
            // Remaining time from the pace so far, as A1111 estimates it.
            eta = progress > 0.01 ? current.Elapsed.TotalSeconds / progress * (1 - progress) : 0;
            if (!skipImage && current.Preview is { } preview) image = Convert.ToBase64String(ImageEncoder.Encode(preview, ImageFormat.Png));
        }
        return Results.Json(new
        {
            progress,
            eta_relative = eta,
            state = new
            {
                skipped = false,
                interrupted = current?.Interrupted ?? false,
                stopping_generation = false,
                job = current is null ? "" : $"{current.Kind} {current.RequestId}",
                job_count = running.Count + server.Queue.Waiting,
                job_timestamp = (current?.Started ?? DateTimeOffset.UtcNow).ToString("yyyyMMddHHmmss", System.Globalization.CultureInfo.InvariantCulture),
                job_no = 0,
                sampling_step = step,
                sampling_steps = steps,
            },
            current_image = image,
            textinfo = (string?)null,
        });
    }
}
