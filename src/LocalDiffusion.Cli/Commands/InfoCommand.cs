using LocalDiffusion.Pipeline;
using System.CommandLine;
using System.Globalization;
using Spectre.Console;

namespace LocalDiffusion.Cli.Commands;

/// <summary><c>localdiffusion info</c>: what the engine detects in a model folder.</summary>
internal static class InfoCommand
{
    public static Command Create(IAnsiConsole console)
    {
        var model = new Option<string?>("--model", "-m") { Description = $"Model folder. Default: {ModelLocator.DefaultModel}." };
        var device = new Option<string>("--device") { Description = "auto | cpu | cuda[:N] | tensorrt[:N] | directml[:N] | coreml.", DefaultValueFactory = _ => "auto" };
        var cacheDir = CacheDirOption.Create();
        var vae = VaeOption.Create();
        var previewVae = VaeOption.CreatePreview();
        var command = new Command("info", "Show the components, dtypes, shapes, scheduler and execution provider of a model.") { model, device, cacheDir, vae, previewVae };
        command.SetAction(parse =>
        {
            using var pipeline = StableDiffusionPipeline.Load(ModelLocator.Resolve(parse.GetValue(model)),
                new PipelineOptions
                {
                    Device = parse.GetValue(device)!, CacheDirectory = parse.GetValue(cacheDir), VaeDecoderPath = parse.GetValue(vae),
                    PreviewDecoderPath = VaeOption.ReadPreview(parse.GetValue(previewVae)).Path, FullVaePreviews = VaeOption.ReadPreview(parse.GetValue(previewVae)).FullVae,
                });
            var info = pipeline.Info;
            var ci = CultureInfo.InvariantCulture;
            var summary = new Grid().AddColumn().AddColumn();
            summary.AddRow("model", Markup.Escape(info.Root));
            summary.AddRow("pipeline", Markup.Escape(info.PipelineClass ?? "(no model_index.json)"));
            summary.AddRow("layout", Markup.Escape(info.Layout));
            summary.AddRow("device", Markup.Escape(info.Device + (info.DeviceNotes.Count > 0 ? $" (passed over: {string.Join("; ", info.DeviceNotes)})" : "")));
            summary.AddRow("family", Markup.Escape(info.Family.Name));
            summary.AddRow("defaults", Markup.Escape(string.Create(ci, $"{info.Family.DefaultSteps} steps, guidance {info.Family.DefaultGuidanceScale}{(info.Family.UsesClassifierFreeGuidance(info.Family.DefaultGuidanceScale) ? "" : " (no CFG batch)")}")));
            summary.AddRow("scheduler", Markup.Escape(info.Scheduler));
            summary.AddRow("native size", $"{info.NativeWidth}x{info.NativeHeight} (sides in multiples of {info.SizeMultiple} px)");
            summary.AddRow("tasks", Markup.Escape(info.Tasks.Count > 0 ? string.Join(", ", info.Tasks) : "none (an inpainting UNet needs vae_encoder/model.onnx)"));
            summary.AddRow("vae scaling factor", info.VaeScalingFactor.ToString(ci));
            summary.AddRow("vae decoder", Markup.Escape($"{info.VaeDecoderPath} ({(info.VaeDecoderKind == "TAESD" ? "TAESD, " : "")}{info.VaeDecoderPrecision}" +
                (info.VaeDecoderFallbackPath is { } fp32 ? $"; on overflow, float32 {fp32})" : info.VaeDecoderPrecision == "float16" ? "; no float32 fallback)" : ")")));
            summary.AddRow("preview decoder", Markup.Escape($"{info.PreviewDecoderPath} ({info.PreviewDecoderKind})"));
            summary.AddRow("tokenizer vocabulary", info.TokenizerVocabularySize.ToString(ci));
            summary.AddRow("model cache", Markup.Escape($"{CacheDirOption.Resolve(parse, cacheDir)} ({string.Join(", ", info.Components.Select(c => $"{c.Name} {c.Cache}"))})"));
            summary.AddRow("unet attention", Markup.Escape(info.UnetAttention));
            summary.AddRow("unet controlnet", info.UnetControlNetResiduals > 0
                ? $"{info.UnetControlNetResiduals - 1} down-block + 1 mid-block residual inputs (--controlnet can steer it)"
                : "no residual inputs (ControlNets cannot steer this export)");
            summary.AddRow("unet batch", info.UnetFixedBatch is { } b ? $"fixed {b}{(b == 1 ? " (CFG runs as two calls)" : "")}" : "dynamic");
            console.Write(summary);

            var table = new Table().AddColumns("component", "", "name", "type");
            foreach (var c in info.Components)
            {
                foreach (var i in c.Inputs) table.AddRow(c.Name, "in", Markup.Escape(i.Name), Markup.Escape(i.Describe()));
                foreach (var o in c.Outputs) table.AddRow(c.Name, "out", Markup.Escape(o.Name), Markup.Escape(o.Describe()));
            }
            console.Write(table);
            return 0;
        });
        return command;
    }
}
