using System.CommandLine;
using LocalDiffusion.Server;
using Microsoft.Extensions.Logging;
using Spectre.Console;

namespace LocalDiffusion.Cli.Commands;

/// <summary><c>localdiffusion serve</c>: the OpenAI Images API, an AUTOMATIC1111 API subset and a web UI, on this machine.</summary>
internal static class ServeCommand
{
    public static Command Create(IAnsiConsole console)
    {
        var models = new Option<string[]>("--model", "-m") { Description = $"A model folder to serve (repeatable); its id is the folder name. Default: {ModelLocator.DefaultModel}.", AllowMultipleArgumentsPerToken = false };
        var modelsDir = new Option<string?>("--models-dir") { Description = "Serve every model folder (one holding model_index.json, or Black Forest Labs' FLUX.1 ONNX layout) inside this folder." };
        var host = new Option<string>("--host") { Description = "Address to listen on. Anything but a loopback address exposes the server to the network: use --api-key then.", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port (0: any free port; the address is printed).", DefaultValueFactory = _ => 7860 };
        var apiKey = new Option<string?>("--api-key") { Description = "Require 'Authorization: Bearer KEY' on the API (also read from $LOCALDIFFUSION_API_KEY)." };
        var maxQueue = new Option<int>("--max-queue") { Description = "Requests that may wait for a generation; more get 429 at once.", DefaultValueFactory = _ => 16 };
        var concurrency = new Option<int>("--concurrency") { Description = "Generations that run at the same time.", DefaultValueFactory = _ => 1 };
        var maxBatch = new Option<int>("--max-batch") { Description = "Most images in one dynamic batch of waiting compatible requests (1 = no batching).", DefaultValueFactory = _ => 4 };
        var outputDir = new Option<string?>("--output-dir") { Description = "Where images handed out by URL are written (shared storage for replicas). Default: a temporary folder removed on exit." };
        var device = new Option<string>("--device") { Description = "auto | cpu | cuda[:N] | tensorrt[:N] | directml[:N] | coreml.", DefaultValueFactory = _ => "auto" };
        var ttl = new Option<double>("--image-ttl-minutes") { Description = "How long image URLs stay valid; files are deleted after that.", DefaultValueFactory = _ => 60 };
        var cors = new Option<string[]>("--cors-origin") { Description = "Allow browser pages from this origin (scheme://host[:port]) to call the API (repeatable). Default: only the server's own web UI may send requests from a browser." };
        var allowedHosts = new Option<string[]>("--allowed-host") { Description = "Another host name clients reach the server under (repeatable; *.example.com for sub-domains, * for any). Loopback names, IP addresses, --host and --public-url's host are always allowed." };
        var maxPixels = new Option<long?>("--max-pixels") { Description = $"Most pixels (width × height) one image may have; larger requests get 400. Default: {Server.Generation.SizeLimitDefaults.NativeAreas}× each model's native area." };
        var threads = new Option<int?>("--threads") { Description = "CPU threads per operator (default: ONNX Runtime's choice)." };
        var publicUrl = UrlOption.Create("--public-url",
            "The URL clients reach this server at (behind a proxy or load balancer), used in image URLs. Default: the --host address.",
            "https://images.example.com");
        var otlp = UrlOption.Create("--otlp-endpoint",
            "Send traces (per request, queue wait, prompt encoding, denoising steps, decoding) and metrics by OTLP to this collector URL (default: $OTEL_EXPORTER_OTLP_ENDPOINT; none: no export).",
            "http://localhost:4317");
        var vae = VaeOption.Create();
        var previewVae = VaeOption.CreatePreview();
        var promptCache = new Option<int>("--prompt-cache") { Description = "Prompts whose encoded conditioning each model keeps (a repeated prompt skips the text encoders; pictures are identical). 0 turns it off.", DefaultValueFactory = _ => 64 };
        var loraDir = new Option<string?>("--lora-dir") { Description = "The LoRA folder: listed by /sdapi/v1/loras; prompts' <lora:NAME:WEIGHT> find NAME.safetensors there." };
        var controlNetDir = new Option<string?>("--controlnet-dir") { Description = "The ControlNet folder: its subfolders holding model.onnx (and its .onnx files) are listed by /controlnet/model_list and named by A1111 ControlNet units and the OpenAI body's controlnets." };
        var lowMemory = LowMemoryOption.Create("Hold each model only while a stage of a generation uses it (less memory; every generation reopens its models from the optimised-model cache).");

        var command = new Command("serve", "Serve models over HTTP: OpenAI Images API (/v1), AUTOMATIC1111 API (/sdapi/v1), web UI (/).")
        {
            models, modelsDir, host, port, apiKey, maxQueue, concurrency, maxBatch, outputDir, device, ttl, cors, allowedHosts, maxPixels, threads, publicUrl, vae, lowMemory, otlp,
        };
        command.Options.Add(loraDir);
        var embeddingsDir = new Option<string?>("--embeddings-dir") { Description = "A folder of textual-inversion embeddings: listed by /sdapi/v1/embeddings; each file's name in a prompt uses it." };
        command.Options.Add(embeddingsDir);
        command.Options.Add(controlNetDir);
        var upscalerDir = new Option<string?>("--upscaler-dir") { Description = "A folder of ESRGAN-family .onnx upscalers (each NAME.onnx the upscaler NAME): listed by /sdapi/v1/upscalers, used by /sdapi/v1/extra-single-image, the hires fix and the web UI's Upscale button." };
        command.Options.Add(upscalerDir);
        command.Options.Add(previewVae);
        command.Options.Add(promptCache);
        var tiling = new VaeTilingFlags();
        tiling.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var folders = parse.GetValue(models) ?? [];
            var directory = parse.GetValue(modelsDir);
            if (folders.Length == 0 && directory is null) folders = [ModelLocator.Resolve(null)];
            var options = new ServerOptions
            {
                Models = folders,
                ModelsDirectory = directory,
                Host = parse.GetValue(host)!,
                Port = parse.GetValue(port),
                ApiKey = parse.GetValue(apiKey) ?? (Environment.GetEnvironmentVariable("LOCALDIFFUSION_API_KEY") is { Length: > 0 } k ? k : null),
                MaxQueue = parse.GetValue(maxQueue),
                Concurrency = parse.GetValue(concurrency),
                MaxBatch = parse.GetValue(maxBatch),
                OutputDirectory = parse.GetValue(outputDir),
                Device = parse.GetValue(device)!,
                ImageTtl = TimeSpan.FromMinutes(parse.GetValue(ttl)),
                CorsOrigins = parse.GetValue(cors) ?? [],
                AllowedHosts = parse.GetValue(allowedHosts) ?? [],
                MaxPixels = parse.GetValue(maxPixels),
                IntraOpThreads = parse.GetValue(threads),
                PublicUrl = parse.GetValue(publicUrl),
                VaeDecoderPath = parse.GetValue(vae),
                PreviewDecoderPath = VaeOption.ReadPreview(parse.GetValue(previewVae)).Path,
                FullVaePreviews = VaeOption.ReadPreview(parse.GetValue(previewVae)).FullVae,
                LoraDirectory = parse.GetValue(loraDir),
                EmbeddingsDirectory = parse.GetValue(embeddingsDir),
                ControlNetDirectory = parse.GetValue(controlNetDir),
                UpscalerDirectory = parse.GetValue(upscalerDir),
                PromptCacheEntries = parse.GetValue(promptCache),
                LowMemory = parse.GetValue(lowMemory),
                VaeTiling = tiling.Read(parse),
            };
            var level = parse.GetValue<bool>("--verbose") ? LogLevel.Debug : LogLevel.Information;
            using var logs = LoggerFactory.Create(b => b
                .AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; })
                .SetMinimumLevel(level)
                .AddFilter("Microsoft", LogLevel.Warning)
                .AddFilter("Microsoft.Extensions.Hosting", LogLevel.None) // a failed start (port in use) is reported once, as one line, by the CLI
                .AddFilter("System", LogLevel.Warning));
            using var telemetry = OtlpExport.Start(parse.GetValue(otlp));
            await using var server = await LocalDiffusionServer.StartAsync(options, logs, cancellationToken);
            console.MarkupLineInterpolated($"LocalDiffusion is serving [green]{string.Join(", ", server.ModelIds)}[/] at [link]{server.Address}[/] (web UI there; OpenAI base URL {server.Address}v1). Ctrl+C stops it.");
            await server.WaitForShutdownAsync(cancellationToken);
            return 0;
        });
        return command;
    }
}
