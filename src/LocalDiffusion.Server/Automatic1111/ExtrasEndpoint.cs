using System.Globalization;
using System.Net;
using LocalDiffusion.Server.Errors;
using LocalDiffusion.Server.Http;
using LocalDiffusion.Server.Uploads;
using LocalDiffusion.Upscaling;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LocalDiffusion.Server.Automatic1111;

/// <summary>
/// A1111's extras tab for one picture, <c>POST /sdapi/v1/extra-single-image</c>: <c>image</c> (base64), <c>resize_mode</c>
/// 0 (by <c>upscaling_resize</c>, default 2) or 1 (to <c>upscaling_resize_w</c>×<c>upscaling_resize_h</c>, centre-cropped
/// unless <c>upscaling_crop</c> is false), <c>upscaler_1</c>, and <c>upscaler_2</c> blended in at
/// <c>extras_upscaler_2_visibility</c> (scripts/postprocessing_upscale.py) → <c>{html_info, image}</c>. Alpha is kept
/// (A1111 drops it). Face restoration is refused: no face models exist here. The work takes a generation queue slot.
/// </summary>
internal static class ExtrasEndpoint
{
    private const long MaxOutputPixels = 4096L * 4096;

    public static void Map(IEndpointRouteBuilder app, ServerContext server) =>
        app.MapPost("/sdapi/v1/extra-single-image", async (HttpContext context) =>
        {
            var json = await JsonBody.ReadObjectAsync(context, server.Options.MaxImg2ImgJsonBytes);
            var f = new JsonFields(json);
            var text = f.String("image");
            if (string.IsNullOrWhiteSpace(text))
                throw ApiException.BadRequest("image", "Missing required parameter: 'image' (a base64 PNG or JPEG, optionally a data: URL).", "missing_required_parameter");
            foreach (var face in new[] { "gfpgan_visibility", "codeformer_visibility" })
                if (f.Double(face, 0, 1) is > 0)
                    throw ApiException.BadRequest(face, $"{face} asks for face restoration, which this server does not have (no GFPGAN/CodeFormer models); send 0.");
            var mode = f.Int("resize_mode", 0, 1) ?? 0;
            var by = f.Double("upscaling_resize", 0.01, 16) ?? 2.0;
            var toW = f.Int("upscaling_resize_w", 1, 8192) ?? 512;
            var toH = f.Int("upscaling_resize_h", 1, 8192) ?? 512;
            var crop = f.Bool("upscaling_crop") ?? true;
            var first = Upscaler(server, f.String("upscaler_1") ?? "None", "upscaler_1");
            var second = Upscaler(server, f.String("upscaler_2") ?? "None", "upscaler_2");
            var visibility = f.Double("extras_upscaler_2_visibility", 0, 1) ?? 0;

            RgbaPicture picture;
            try
            {
                picture = RgbaPicture.Decode(UploadedImage.Base64Bytes(text, "image"), "image");
            }
            catch (InvalidDataException e)
            {
                throw ApiException.BadRequest("image", $"Invalid 'image': {e.Message}", "invalid_image");
            }
            var scale = mode == 1 ? Math.Max((double)toW / picture.Width, (double)toH / picture.Height) : by;
            var (outW, outH) = ((int)(picture.Width * scale / 8) * 8, (int)(picture.Height * scale / 8) * 8);
            // The blend buffers hold floats for every output pixel: 4096² (16.8 megapixels) keeps one request near a gigabyte.
            if ((long)outW * outH > MaxOutputPixels && first.Name != "None")
                throw ApiException.BadRequest(mode == 1 ? "upscaling_resize_w" : "upscaling_resize",
                    $"The upscaled picture would be {outW}x{outH}, more than the {MaxOutputPixels / 1_000_000.0:0.#} megapixels (4096x4096) this server makes; ask for less.");
            if (outW < 8 || outH < 8)
                throw ApiException.BadRequest(mode == 1 ? "upscaling_resize_w" : "upscaling_resize",
                    $"The upscaled picture would be {outW}x{outH}; A1111 rounds sides down to multiples of 8, so each must come out at least 8.");

            var info = new List<string>();
            // A1111 does nothing when upscaler_1 is None: the picture comes back as it was.
            if (first.Name != "None")
            {
                using var slot = await server.Queue.EnterAsync(context.RequestAborted);
                var result = await Upscale(picture, first, mode, scale, toW, toH, crop, info, context.RequestAborted);
                info.Add($"Postprocess upscaler: {first.Name}");
                if (second.Name != "None" && visibility > 0)
                {
                    var other = await Upscale(picture, second, mode, scale, toW, toH, crop, [], context.RequestAborted);
                    result = Blend(result, other, visibility);
                    info.Add($"Postprocess upscaler 2: {second.Name}");
                }
                picture = result;
            }
            var html = info.Count == 0 ? "" : $"<p>{WebUtility.HtmlEncode(string.Join(", ", info))}</p>";
            return Results.Json(new { html_info = html, image = Convert.ToBase64String(picture.EncodePng()) });
        });

    private static (string Name, ImageUpscaler? Model) Upscaler(ServerContext server, string name, string field)
    {
        if (UpscalerCatalog.IsBuiltIn(name)) return (name, null);
        return (name, server.Upscalers.Find(name) ?? throw ApiException.BadRequest(field,
            $"{field} '{name}' is not available; use one of {string.Join(", ", server.Upscalers.Names.Select(n => $"'{n}'"))}."));
    }

    private static async Task<RgbaPicture> Upscale(RgbaPicture picture, (string Name, ImageUpscaler? Model) upscaler, int mode, double scale,
        int toW, int toH, bool crop, List<string> info, CancellationToken cancellationToken)
    {
        info.Add(mode == 1 ? $"Postprocess upscale to: {toW}x{toH}" : $"Postprocess upscale by: {scale.ToString(CultureInfo.InvariantCulture)}");
        var result = await A1111Upscale.ByAsync(picture, scale, upscaler.Name, upscaler.Model, null, cancellationToken);
        if (mode != 1 || !crop) return result;
        info.Add($"Postprocess crop to: {toW}x{toH}");
        return CentreOn(result, toW, toH);
    }

    // PIL's paste of the picture centred on a black toW×toH canvas (A1111's crop: whatever sticks out is cut off).
    private static RgbaPicture CentreOn(RgbaPicture picture, int toW, int toH)
    {
        var rgb = new byte[toW * toH * 3];
        var alpha = picture.Alpha is null ? null : new byte[toW * toH];
        var (left, top) = (toW / 2 - picture.Width / 2, toH / 2 - picture.Height / 2);
        for (var y = Math.Max(0, top); y < Math.Min(toH, top + picture.Height); y++)
            for (var x = Math.Max(0, left); x < Math.Min(toW, left + picture.Width); x++)
            {
                var (from, to) = ((y - top) * picture.Width + x - left, y * toW + x);
                picture.Rgb.AsSpan(from * 3, 3).CopyTo(rgb.AsSpan(to * 3, 3));
                if (alpha is not null) alpha[to] = picture.Alpha![from];
            }
        return new RgbaPicture(toW, toH, rgb, alpha);
    }

    // PIL's Image.blend: a·(1 − t) + b·t per channel, rounded.
    private static RgbaPicture Blend(RgbaPicture a, RgbaPicture b, double t)
    {
        var rgb = new byte[a.Rgb.Length];
        for (var i = 0; i < rgb.Length; i++)
            rgb[i] = (byte)Math.Clamp(Math.Round(a.Rgb[i] + (b.Rgb[i] - a.Rgb[i]) * t), 0, 255);
        return new RgbaPicture(a.Width, a.Height, rgb, a.Alpha);
    }
}
