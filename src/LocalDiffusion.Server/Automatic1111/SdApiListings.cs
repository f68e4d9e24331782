using Microsoft.Extensions.Logging;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LocalDiffusion.Server.Automatic1111;

/// <summary>
/// The listing routes A1111 clients call when they start (SillyTavern, Open WebUI, the Photoshop and Krita plugins read
/// these to fill their menus): each answers with what this server really has, in A1111's shape, so a client finds an
/// empty list where there is nothing instead of a 404 that it treats as "not an A1111 server". LoRAs are the
/// <c>--lora-dir</c> folder's files; embeddings are the <c>--embeddings-dir</c> folder's, loaded or skipped for the model, upscalers are A1111's built-ins (None, Lanczos, Nearest) and the <c>--upscaler-dir</c> models; the VAE list holds the <c>--vae</c> decoder when one is set.
/// </summary>
internal static class SdApiListings
{
    private static double? ScaleOf(ServerContext server, string name)
    {
        try
        {
            return server.Upscalers.ScaleOf(name);
        }
        catch (LocalDiffusion.Onnx.ModelLoadException e)
        {
            server.Logger.LogWarning("Upscaler {Name} does not open: {Message}", name, e.Message);
            return null;
        }
    }

    public static void Map(IEndpointRouteBuilder app, ServerContext server)
    {
        var options = server.Options;
        // A1111's shape: {name, alias, path, metadata} per file of the LoRA folder (metadata: the file's __metadata__).
        // Files whose keys show another family than the A1111 model's (a FLUX LoRA for SD 1.5) are left out, so the listing
        // waits for that model, as /sdapi/v1/embeddings does; a model that fails to load leaves every file listed.
        app.MapGet("/sdapi/v1/loras", async (CancellationToken token) =>
        {
            if (options.LoraDirectory is not { } loraDirectory) return Results.Json(Array.Empty<object>());
            Model.ModelArchitecture? architecture = null;
            try
            {
                architecture = (await server.A1111Model.Loading.WaitAsync(token).ConfigureAwait(false)).Info.Family.Architecture;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                server.Logger.LogWarning("LoRAs listed unfiltered: the model did not load ({Message})", e.Message);
            }
            return Results.Json(Adapters.LoraDirectory.List(loraDirectory)
                .Where(f => architecture is not { } a || Families.FamilyLoras.FileFits(f, a))
                .Select(f => new
                {
                    name = Adapters.LoraDirectory.NameOf(loraDirectory, f),
                    alias = Path.GetFileNameWithoutExtension(f),
                    path = Path.GetFullPath(f),
                    metadata = ReadMetadata(f),
                }).ToArray());
        });
        app.MapGet("/sdapi/v1/hypernetworks", () => Results.Json(Array.Empty<object>()));
        // A1111's shape: {loaded: {name: {step, sd_checkpoint, sd_checkpoint_name, shape, vectors}}, skipped: {…}} for the
        // checkpoint A1111 clients use (its --embeddings-dir files, checked against its text encoders once it has loaded).
        app.MapGet("/sdapi/v1/embeddings", async (CancellationToken token) =>
        {
            var pipeline = await server.A1111Model.Loading.WaitAsync(token).ConfigureAwait(false);
            return Results.Json(new
            {
                loaded = pipeline.Embeddings.ToDictionary(e => e.Name, e => Describe(e, null)),
                skipped = pipeline.SkippedEmbeddings.GroupBy(s => s.Name).ToDictionary(g => g.Key, g => Describe(g.First().Embedding, g.First().Reason)),
            });
        });
        // A1111's built-in upscalers, then each .onnx of --upscaler-dir (its scale found by opening it; null when it does not open).
        app.MapGet("/sdapi/v1/upscalers", () => Results.Json(Upscaling.HiresPlan.BuiltInUpscalers.Select(name =>
            new { name, model_name = (string?)null, model_path = (string?)null, model_url = (string?)null, scale = (double?)4.0 })
            .Concat(server.Upscalers.Files.Select(f => new { name = f.Name, model_name = (string?)f.Name, model_path = (string?)f.Path, model_url = (string?)null, scale = ScaleOf(server, f.Name) }))));
        app.MapGet("/sdapi/v1/latent-upscale-modes", () => Results.Json(Upscaling.LatentResize.Modes.Keys.Select(name => new { name })));
        app.MapGet("/sdapi/v1/face-restorers", () => Results.Json(Array.Empty<object>()));
        app.MapGet("/sdapi/v1/realesrgan-models", () => Results.Json(Array.Empty<object>()));
        app.MapGet("/sdapi/v1/prompt-styles", () => Results.Json(Array.Empty<object>()));
        // A1111 lists its always-on scripts by lower-case title; clients look for "controlnet" here before sending units.
        string[] scripts = options.ControlNetDirectory is null ? [] : ["controlnet"];
        app.MapGet("/sdapi/v1/scripts", () => Results.Json(new { txt2img = scripts, img2img = scripts }));
        app.MapGet("/sdapi/v1/extensions", () => Results.Json(Array.Empty<object>()));
        app.MapGet("/sdapi/v1/sd-vae", () => Results.Json(VaeName(options) is { } vae
            ? new[] { new { model_name = vae, filename = Path.GetFullPath(options.VaeDecoderPath!) } }
            : []));
        // Clients call these after changing files or to free GPU memory between jobs; models here stay loaded (or are
        // held per stage with --low-memory), so they succeed without doing anything, as A1111 answers them: null.
        foreach (var refresh in new[] { "refresh-vae", "refresh-loras", "refresh-embeddings", "unload-checkpoint", "reload-checkpoint" })
            app.MapPost($"/sdapi/v1/{refresh}", () => Results.Text("null", "application/json"));
        // Forge's list of VAE/text-encoder modules, which SillyTavern asks beside sd-vae.
        app.MapGet("/sdapi/v1/sd-modules", () => Results.Json(Array.Empty<object>()));
        app.MapGet("/sdapi/v1/cmd-flags", () => Results.Json(new Dictionary<string, object?>
        {
            ["api"] = true,
            ["nowebui"] = false,
            ["listen"] = !LocalDiffusionServer.IsLoopback(options.Host),
            ["server_name"] = options.Host,
            ["port"] = server.ImageBase.Port,
            ["api_auth"] = null, // the key is a bearer token (--api-key), never shown
            ["cors_allow_origins"] = options.CorsOrigins.Count == 0 ? null : string.Join(',', options.CorsOrigins),
            ["lowvram"] = options.LowMemory,
            ["medvram"] = false,
            ["ckpt_dir"] = options.ModelsDirectory,
            ["vae_path"] = options.VaeDecoderPath,
            ["device"] = options.Device,
        }));
        app.MapGet("/sdapi/v1/memory", Memory);
    }

    /// <summary>
    /// The <c>--vae</c> decoder's name as A1111 lists VAEs, or null when each model uses its own: the last two folders of
    /// its path ("sdxl-vae-fp16/vae_decoder"), since an ONNX decoder is a model.onnx in a folder named after its role.
    /// </summary>
    public static string? VaeName(ServerOptions options)
    {
        if (options.VaeDecoderPath is not { } vae) return null;
        var full = Path.GetFullPath(vae);
        var folder = Directory.Exists(full) ? full : Path.GetDirectoryName(full)!;
        return $"{Path.GetFileName(Path.GetDirectoryName(folder))}/{Path.GetFileName(folder)}";
    }

    // A1111's shape: ram.used is this process's resident memory, total the machine's (or the container's limit);
    // cuda carries an error where there is no CUDA device to report on (ONNX Runtime keeps its GPU memory to itself).
    private static IResult Memory()
    {
        var used = Environment.WorkingSet;
        var total = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        return Results.Json(new
        {
            ram = new { free = Math.Max(0, total - used), used, total },
            cuda = new { error = "GPU memory is not reported: ONNX Runtime's execution providers do not expose it." },
        });
    }

    // A file whose header cannot be read is still listed (A1111 lists it too), with no metadata.
    private static IReadOnlyDictionary<string, string> ReadMetadata(string file)
    {
        try
        {
            return Adapters.SafetensorsFile.ReadMetadata(file);
        }
        catch (Adapters.SafetensorsException)
        {
            return new Dictionary<string, string>();
        }
    }

    // One embedding in A1111's /sdapi/v1/embeddings shape; "reason" (ours) says why a skipped one was skipped.
    private static Dictionary<string, object?> Describe(Embeddings.TextualInversion? e, string? reason)
    {
        var entry = new Dictionary<string, object?>
        {
            ["step"] = e?.Step,
            ["sd_checkpoint"] = e?.SdCheckpoint,
            ["sd_checkpoint_name"] = e?.SdCheckpointName,
            ["shape"] = e?.Shape,
            ["vectors"] = e?.VectorCount,
        };
        if (reason is not null) entry["reason"] = reason;
        return entry;
    }
}
