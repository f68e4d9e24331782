using System.Text.Json;
using System.Threading.Channels;
using LocalDiffusion.Imaging;
using LocalDiffusion.Server.Errors;
using LocalDiffusion.Server.Files;
using LocalDiffusion.Server.Generation;
using LocalDiffusion.Server.Http;
using LocalDiffusion.Server.Models;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LocalDiffusion.Server.OpenAi;

/// <summary>
/// The OpenAI Images API: <c>POST /v1/images/generations</c> (JSON or server-sent events), the image files its
/// URLs point at, <c>GET /v1/models</c>, and the multipart <c>/v1/images/edits</c> (img2img, or inpainting with a mask)
/// and <c>/v1/images/variations</c> (img2img from the picture), which answer as generations do.
/// </summary>
internal static class ImagesEndpoints
{
    public static void Map(IEndpointRouteBuilder app, ServerContext server, string prefix = "/v1")
    {
        app.MapPost($"{prefix}/images/generations", (HttpContext context) => GenerateAsync(context, server));
        app.MapPost($"{prefix}/images/edits", async (HttpContext context) =>
        {
            var form = await MultipartForm.ReadAsync(context, server.Options.MaxImageBytes);
            await ReplyAsync(context, server, await ImageEditForm.ParseEditAsync(form, server.Catalog, server.Options.LoraDirectory, context.RequestAborted));
        });
        app.MapPost($"{prefix}/images/variations", async (HttpContext context) =>
        {
            var form = await MultipartForm.ReadAsync(context, server.Options.MaxImageBytes);
            await ReplyAsync(context, server, await ImageEditForm.ParseVariationAsync(form, server.Catalog, server.Options.LoraDirectory, context.RequestAborted));
        });
        app.MapGet($"{prefix}/images/files/{{name}}", (string name) =>
            server.Images.TryGet(name, out var path, out var contentType)
                ? Results.File(path, contentType, enableRangeProcessing: false)
                : throw new ApiException(404, $"No image '{name}' on this server (image URLs expire after {Ttl(server.Images.Ttl)}).", "invalid_request_error", null, "image_not_found"));
        app.MapGet($"{prefix}/models", () => Results.Json(new { @object = "list", data = server.Catalog.All.Select(Describe) }));
        app.MapGet($"{prefix}/models/{{id}}", (string id) => Results.Json(Describe(server.Catalog.Get(id))));
    }

    private static string Ttl(TimeSpan ttl) => ttl.TotalMinutes switch
    {
        < 1 => $"{ttl.TotalSeconds:0} seconds",
        1 => "1 minute",
        var m when m < 120 => $"{m:0.#} minutes",
        _ => $"{ttl.TotalHours:0.#} hours",
    };

    private static object Describe(ServedModel m) => new
    {
        id = m.Id,
        @object = "model",
        created = 0,
        owned_by = "localdiffusion",
        // Extensions: whether it can generate now, and its native size (what size "auto" means).
        state = m.State,
        native_size = m.IsReady ? $"{m.Pipeline.Info.NativeWidth}x{m.Pipeline.Info.NativeHeight}" : null,
        scheduler = m.IsReady ? m.Pipeline.Info.Scheduler : null,
        // What it can do: text-to-image, img2img (edits, variations), inpainting (edits with a mask).
        tasks = m.IsReady ? m.Pipeline.Info.Tasks : null,
        // What decodes its live previews (partial images): "TAESD" (the tiny autoencoder) or "VAE".
        preview_decoder = m.IsReady ? m.Pipeline.Info.PreviewDecoderKind : null,
        // What a request that leaves them out runs, and how guidance works: "classifier-free" (the negative prompt counts
        // above 1), "embedded" (LCM, FLUX.1-dev: the scale is an input of the denoiser; no negative prompt) or "none" (FLUX.1-schnell).
        family = m.IsReady ? m.Pipeline.Info.Family.Name : null,
        defaults = m.IsReady ? new { steps = m.Pipeline.Info.Family.DefaultSteps, guidance_scale = m.Pipeline.Info.Family.DefaultGuidanceScale } : null,
        guidance = m.IsReady ? m.Pipeline.Info.Family.Guidance switch
        {
            LocalDiffusion.Model.GuidanceMode.Embedded => "embedded",
            LocalDiffusion.Model.GuidanceMode.None => "none",
            _ => "classifier-free",
        } : null,
    };

    private static async Task GenerateAsync(HttpContext context, ServerContext server)
    {
        var json = await JsonBody.ReadObjectAsync(context, server.Options.MaxJsonBodyBytes);
        var body = ImageGenerationBody.Parse(json, server.Catalog, strictTypes: true, server.Options.LoraDirectory);
        // The local extension "controlnets": a list of units shaped as the A1111 ControlNet extension's.
        if (json.TryGetProperty("controlnets", out var controlNets))
        {
            var info = body.Model.Pipeline.Info;
            body = body with { Request = ControlNets.A1111ControlNetScript.ApplyUnits(controlNets, "controlnets", body.Request, server,
                body.Request.Width ?? info.NativeWidth, body.Request.Height ?? info.NativeHeight) };
        }
        await ReplyAsync(context, server, body);
    }

    /// <summary>Runs a parsed generation, edit or variation and answers it: JSON, or server-sent events with <c>stream</c>.</summary>
    private static async Task ReplyAsync(HttpContext context, ServerContext server, ImageGenerationBody body)
    {
        // What the request left unset is the model's (503 while it loads): the reply and the previews report what runs.
        body = body with { Request = body.Model.Pipeline.WithDefaults(body.Request) };
        if (body.Stream)
        {
            await StreamAsync(context, server, body);
            return;
        }
        var outcome = await server.Generator.GenerateAsync(context, body.Model, body.Request);
        var result = outcome.Result;
        var usage = Usage(body);
        var revised = result.Warnings.Count > 0 ? RevisedPrompt.Of(body.Model.Tokenizer, body.Request.Prompt) : body.Request.Prompt;
        var data = new List<object>(result.Images.Count);
        foreach (var image in result.Images)
        {
            var bytes = ImageEncoder.Encode(image, body.Format, body.Compression);
            if (body.ResponseAsUrl)
            {
                var name = await server.Images.SaveAsync(bytes, body.Format, context.RequestAborted);
                data.Add(new { url = new Uri(server.ImageBase, $"{server.Routes.OpenAi.Value!.TrimStart('/')}/images/files/{name}").ToString(), revised_prompt = revised });
            }
            else
            {
                data.Add(new { b64_json = Convert.ToBase64String(bytes), revised_prompt = revised });
            }
        }
        var first = result.Images[0];
        await Results.Json(new
        {
            created = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
            data,
            background = "opaque",
            output_format = ImageEncoder.Extension(body.Format),
            quality = body.Quality,
            size = $"{first.Width}x{first.Height}",
            usage,
            // Extensions: the model and the seed of every image (the batch shares one seed, as diffusers' num_images_per_prompt).
            model = outcome.Model.Id,
            seeds = result.Images.Select(_ => result.Seed),
            scheduler = result.Scheduler,
            steps = body.Request.Steps,
            warnings = body.Warnings.Concat(outcome.Warnings).Concat(result.Warnings),
        }).ExecuteAsync(context);
    }

    /// <summary>
    /// Server-sent events in OpenAI's shapes: <c>image_generation.partial_image</c> for each preview (decoded at evenly
    /// spaced steps), then one <c>image_generation.completed</c> per image; with the <c>stream_progress</c> extension also
    /// a <c>localdiffusion.progress</c> event per step. An error after the stream has begun arrives as an <c>error</c> event.
    /// </summary>
    private static async Task StreamAsync(HttpContext context, ServerContext server, ImageGenerationBody body)
    {
        var request = body.Request with { PreviewSteps = ImageGenerationBody.PreviewSteps(body.Request.PreviewableSteps, body.PartialImages) };
        var events = Channel.CreateUnbounded<(string Name, object Data)>(new UnboundedChannelOptions { SingleReader = true });
        var partialIndex = 0;
        var (partialEvent, completedEvent) = ($"{body.EventPrefix}.partial_image", $"{body.EventPrefix}.completed");
        var format = ImageEncoder.Extension(body.Format);
        void OnProgress(GenerationProgress p)
        {
            if (body.StreamProgress && p.Phase == GenerationPhase.Denoising)
                events.Writer.TryWrite(("localdiffusion.progress", new { type = "localdiffusion.progress", step = p.SamplerStep, total_steps = p.SamplerSteps, evaluations = p.Step, total_evaluations = p.TotalSteps, elapsed = p.Elapsed.TotalSeconds }));
            if (p.Preview is not { Count: > 0 } preview) return;
            var image = preview[0];
            events.Writer.TryWrite((partialEvent, new
            {
                type = partialEvent,
                b64_json = Convert.ToBase64String(ImageEncoder.Encode(image, body.Format, body.Compression)),
                created_at = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
                size = $"{image.Width}x{image.Height}",
                quality = body.Quality,
                background = "opaque",
                output_format = format,
                partial_image_index = partialIndex++,
            }));
        }

        var generation = Task.Run(async () =>
        {
            try
            {
                return await server.Generator.GenerateAsync(context, body.Model, request, OnProgress);
            }
            finally
            {
                events.Writer.TryComplete();
            }
        });

        // The first event waits for a queue slot, so errors that come before it (429, 503, 400 from the engine) are plain JSON errors.
        var started = false;
        async Task StartAsync()
        {
            if (started) return;
            started = true;
            context.Response.ContentType = "text/event-stream";
            context.Response.Headers.CacheControl = "no-cache";
            context.Response.Headers["X-Accel-Buffering"] = "no";
            await context.Response.Body.FlushAsync(context.RequestAborted);
        }

        await foreach (var (name, data) in events.Reader.ReadAllAsync(context.RequestAborted))
        {
            await StartAsync();
            await WriteEventAsync(context, name, data);
        }
        GenerationOutcome outcome;
        try
        {
            outcome = await generation;
        }
        catch (Exception e) when (started && !context.RequestAborted.IsCancellationRequested)
        {
            var error = ErrorMiddleware.Map(e, context.TraceIdentifier);
            await WriteEventAsync(context, "error", new { type = "error", error = new { message = error.Message, type = error.Type, param = error.Param, code = error.Code } });
            return;
        }
        await StartAsync();
        foreach (var image in outcome.Result.Images)
        {
            await WriteEventAsync(context, completedEvent, new
            {
                type = completedEvent,
                b64_json = Convert.ToBase64String(ImageEncoder.Encode(image, body.Format, body.Compression)),
                created_at = DateTimeOffset.UtcNow.ToUnixTimeSeconds(),
                size = $"{image.Width}x{image.Height}",
                quality = body.Quality,
                background = "opaque",
                output_format = format,
                usage = Usage(body),
                // Extensions.
                revised_prompt = outcome.Result.Warnings.Count > 0 ? RevisedPrompt.Of(body.Model.Tokenizer, body.Request.Prompt) : body.Request.Prompt,
                seed = outcome.Result.Seed,
                scheduler = outcome.Result.Scheduler,
                parameters = image.Parameters,
                warnings = body.Warnings.Concat(outcome.Warnings).Concat(outcome.Result.Warnings),
            });
        }
    }

    /// <summary>
    /// OpenAI's usage shape. Nothing is billed here; input_tokens counts the prompt's text-encoder tokens (the 75 it reads
    /// and any it cut), so clients that total usage see the prompt's real length. No image tokens are produced.
    /// </summary>
    private static object Usage(ImageGenerationBody body)
    {
        var text = body.Model.Tokenizer is { } tokenizer ? tokenizer.EncodeTokens(body.Request.Prompt).Count : 0;
        return new { total_tokens = text, input_tokens = text, output_tokens = 0, input_tokens_details = new { text_tokens = text, image_tokens = 0 } };
    }

    private static async Task WriteEventAsync(HttpContext context, string name, object data)
    {
        var payload = $"event: {name}\ndata: {JsonSerializer.Serialize(data, ErrorWriter.Json)}\n\n";
        await context.Response.WriteAsync(payload, context.RequestAborted);
        await context.Response.Body.FlushAsync(context.RequestAborted);
    }
}
