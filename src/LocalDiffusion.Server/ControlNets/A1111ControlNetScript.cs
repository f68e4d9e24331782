using LocalDiffusion.Pipeline;
using System.Text.Json;
using LocalDiffusion.ControlNet;
using LocalDiffusion.Server.Errors;
using LocalDiffusion.Server.Http;
using LocalDiffusion.Server.Uploads;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LocalDiffusion.Server.ControlNets;

/// <summary>
/// The sd-webui-controlnet extension's API: its units in <c>alwayson_scripts.controlnet.args</c> of /sdapi/v1/txt2img and
/// img2img, and its <c>/controlnet/model_list</c>, <c>/controlnet/module_list</c> and <c>/controlnet/version</c> routes.
/// Per unit: <c>enabled</c> (default true), <c>image</c> or <c>input_image</c> (base64, or {"image": base64}; img2img
/// falls back to the init image, as the extension does), <c>module</c> (none or canny; <c>threshold_a</c>/<c>threshold_b</c>
/// are canny's thresholds, defaults 100/200), <c>model</c> (a name from model_list), <c>weight</c>, <c>guidance_start</c>,
/// <c>guidance_end</c>, <c>control_mode</c> (0 Balanced or 2 "ControlNet is more important", which is diffusers' guess mode;
/// 1 is refused), <c>resize_mode</c> (only "Just Resize" when the aspect ratios differ); <c>processor_res</c>,
/// <c>pixel_perfect</c> and <c>lowvram</c> are accepted and have no effect.
/// </summary>
internal static class A1111ControlNetScript
{
    private static readonly string[] Modules = ["none", "canny"];

    public static void Map(IEndpointRouteBuilder app, ServerContext server)
    {
        app.MapGet("/controlnet/version", () => Results.Json(new { version = 2 }));
        app.MapGet("/controlnet/model_list", () => Results.Json(new
        {
            model_list = ControlNetCatalog.List(server.Options.ControlNetDirectory).Select(m => m.Name).ToArray(),
        }));
        app.MapGet("/controlnet/module_list", () => Results.Json(new
        {
            module_list = Modules,
            module_detail = new Dictionary<string, object>
            {
                ["none"] = new { model_free = false, sliders = Array.Empty<object>() },
                ["canny"] = new
                {
                    model_free = false,
                    sliders = new object[]
                    {
                        new { name = "Canny Low Threshold", value = CannyEdges.DefaultLowThreshold, min = 1, max = 255 },
                        new { name = "Canny High Threshold", value = CannyEdges.DefaultHighThreshold, min = 1, max = 255 },
                    },
                },
            },
        }));
    }

    /// <summary>The request with the enabled units of <c>alwayson_scripts.controlnet.args</c>, or as it was without any.</summary>
    public static GenerationRequest Apply(JsonElement body, GenerationRequest request, ServerContext server, int width, int height)
    {
        if (new JsonFields(body).Object("alwayson_scripts") is not { } scripts) return request;
        JsonElement? script = null;
        foreach (var property in scripts.EnumerateObject())
            if (property.Name.Equals("controlnet", StringComparison.OrdinalIgnoreCase)) script = property.Value;
        if (script is not { ValueKind: JsonValueKind.Object } controlnet || !controlnet.TryGetProperty("args", out var args)) return request;
        return ApplyUnits(args, "alwayson_scripts.controlnet.args", request, server, width, height);
    }

    /// <summary>
    /// The request with the enabled units of the list <paramref name="args"/> (named <paramref name="root"/> in errors):
    /// the A1111 units, and the OpenAI body's <c>controlnets</c> extension, which takes the same unit objects.
    /// </summary>
    public static GenerationRequest ApplyUnits(JsonElement args, string root, GenerationRequest request, ServerContext server, int width, int height)
    {
        if (args.ValueKind == JsonValueKind.Null) return request;
        if (args.ValueKind != JsonValueKind.Array)
            throw ApiException.BadRequest(root, $"'{root}' must be a list of ControlNet units.", "invalid_type");
        var units = new List<ControlNetUnit>();
        var modes = new HashSet<int>();
        var index = 0;
        foreach (var arg in args.EnumerateArray())
        {
            var field = $"{root}[{index++}]";
            if (arg.ValueKind != JsonValueKind.Object)
                throw ApiException.BadRequest(field, $"'{field}' must be an object (a ControlNet unit).", "invalid_type");
            var f = new JsonFields(arg);
            if (f.Bool("enabled") == false) continue;
            try
            {
                units.Add(Unit(arg, f, field, request, server, width, height, out var mode));
                modes.Add(mode);
            }
            catch (ApiException e) when (e.Param is { } param && !param.StartsWith(field, StringComparison.Ordinal))
            {
                // JsonFields names the unit's own field ('weight'); the client needs to know which unit.
                throw new ApiException(e.Status, $"{field}: {e.Message}", e.Type, $"{field}.{param}", e.Code);
            }
        }
        if (units.Count == 0) return request;
        if (modes.Count > 1)
            throw ApiException.BadRequest(root,
                "The units mix control_mode Balanced and \"ControlNet is more important\"; this server applies guess mode to all units of a request or none.");
        return request with { ControlNets = units, ControlNetGuessMode = modes.Contains(2) };
    }

    private static ControlNetUnit Unit(JsonElement arg, JsonFields f, string field, GenerationRequest request, ServerContext server, int width, int height, out int mode)
    {
        var modelName = f.String("model");
        if (string.IsNullOrWhiteSpace(modelName) || modelName.Equals("None", StringComparison.OrdinalIgnoreCase))
            throw ApiException.BadRequest($"{field}.model", $"'{field}.model' is missing: name one of /controlnet/model_list ({Names(server)}).", "missing_required_parameter");
        var path = ControlNetCatalog.Find(server.Options.ControlNetDirectory, modelName)
            ?? throw new ApiException(404, $"The ControlNet '{modelName}' is not on this server; /controlnet/model_list has: {Names(server)}.", "invalid_request_error", $"{field}.model", "model_not_found");
        var module = (f.String("module") ?? "none").ToLowerInvariant();
        if (!Modules.Contains(module))
            throw ApiException.BadRequest($"{field}.module",
                $"The preprocessor '{module}' is not available here: this server has none and canny. Others (depth, openpose, lineart, softedge, …) need their own models: run them elsewhere and send the map with module none.");
        var image = Image(arg, field) ?? request.InitImage
            ?? throw ApiException.BadRequest($"{field}.image", $"'{field}.image' is missing: send the control picture as base64 (txt2img has no init image to fall back on).", "missing_required_parameter");
        mode = ControlMode(arg, field);
        CheckResize(arg, field, image, width, height);
        double low = f.Double("threshold_a", -1, 10000) ?? -1, high = f.Double("threshold_b", -1, 10000) ?? -1;
        return new ControlNetUnit
        {
            ModelPath = path,
            Image = image,
            Preprocessor = module == "canny" ? ControlPreprocessor.Canny : ControlPreprocessor.None,
            // The extension sends -1 for "the module's default".
            CannyLowThreshold = low < 0 ? CannyEdges.DefaultLowThreshold : (float)low,
            CannyHighThreshold = high < 0 ? CannyEdges.DefaultHighThreshold : (float)high,
            Scale = (float)(f.Double("weight", 0, StableDiffusionPipeline.MaxControlNetScale) ?? 1),
            GuidanceStart = (float)(f.Double("guidance_start", 0, 1) ?? 0),
            GuidanceEnd = (float)(f.Double("guidance_end", 0, 1) ?? 1),
        };
    }

    private static string Names(ServerContext server) =>
        ControlNetCatalog.List(server.Options.ControlNetDirectory) is { Count: > 0 } list ? string.Join(", ", list.Select(m => m.Name)) : "none (start the server with --controlnet-dir)";

    // "image" (newer) or "input_image" (older): base64, or {"image": base64, "mask": …}.
    private static Imaging.InitImage? Image(JsonElement arg, string field)
    {
        foreach (var name in new[] { "image", "input_image" })
        {
            if (!arg.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null) continue;
            if (value.ValueKind == JsonValueKind.Object && value.TryGetProperty("image", out var inner)) value = inner;
            if (value.ValueKind != JsonValueKind.String)
                throw ApiException.BadRequest($"{field}.{name}", $"'{field}.{name}' must be a base64 picture.", "invalid_type");
            if (value.GetString() is { Length: > 0 } text) return UploadedImage.DecodeBase64(text, $"{field}.{name}").ToInitImage();
        }
        return null;
    }

    // 0 / "Balanced"; 2 / "ControlNet is more important" (guess mode). 1 / "My prompt is more important" scales the
    // residuals per layer in a way diffusers has no counterpart for: refused rather than run as something else.
    private static int ControlMode(JsonElement arg, string field)
    {
        if (!arg.TryGetProperty("control_mode", out var value) || value.ValueKind == JsonValueKind.Null) return 0;
        var mode = value.ValueKind switch
        {
            JsonValueKind.Number when value.TryGetInt32(out var n) => n,
            JsonValueKind.String => value.GetString() switch
            {
                "Balanced" => 0,
                "My prompt is more important" => 1,
                "ControlNet is more important" => 2,
                _ => -1,
            },
            _ => -1,
        };
        return mode switch
        {
            0 or 2 => mode,
            1 => throw ApiException.BadRequest($"{field}.control_mode", "control_mode \"My prompt is more important\" (1) is not supported; use Balanced (0) or \"ControlNet is more important\" (2)."),
            _ => throw ApiException.BadRequest($"{field}.control_mode", $"'{field}.control_mode' must be 0 (Balanced), 1 or 2 (\"ControlNet is more important\"); got {value.GetRawText()}."),
        };
    }

    // The engine stretches the control picture to the output size ("Just Resize"); the extension's default "Crop and
    // Resize" and "Resize and Fill" give the same only when the aspect ratios agree, so otherwise they are refused.
    private static void CheckResize(JsonElement arg, string field, Imaging.InitImage image, int width, int height)
    {
        if (!arg.TryGetProperty("resize_mode", out var value) || value.ValueKind == JsonValueKind.Null) value = default;
        var justResize = value.ValueKind switch
        {
            JsonValueKind.Number => value.TryGetInt32(out var n) && n == 0,
            JsonValueKind.String => value.GetString() is "Just Resize" or "0",
            _ => false, // absent: the extension's default, Crop and Resize
        };
        var sameAspect = Math.Abs((long)image.Width * height - (long)image.Height * width) <= Math.Max(width, height);
        if (!justResize && !sameAspect)
            throw ApiException.BadRequest($"{field}.resize_mode",
                $"The control image is {image.Width}x{image.Height} and the output {width}x{height}: only resize_mode \"Just Resize\" (0) is supported when the aspect ratios differ (crop or pad the picture first).");
    }
}
