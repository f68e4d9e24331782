using LocalDiffusion.Server.Errors;
using LocalDiffusion.Server.Http;
using LocalDiffusion.Server.Uploads;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace LocalDiffusion.Server.Automatic1111;

/// <summary>
/// A1111's <c>POST /sdapi/v1/png-info</c>: <c>{"image": base64 or data: URL}</c> → <c>{"info": the parameters text,
/// "items": the other text chunks, "parameters": the parsed infotext}</c>. Like A1111, the <c>parameters</c> chunk is
/// answered as <c>info</c> and left out of <c>items</c>; a PNG without it answers an empty <c>info</c>.
/// </summary>
internal static class PngInfoEndpoint
{
    public static void Map(IEndpointRouteBuilder app, ServerContext server) =>
        app.MapPost("/sdapi/v1/png-info", async (HttpContext context) =>
        {
            var json = await JsonBody.ReadObjectAsync(context, server.Options.MaxImg2ImgJsonBytes);
            var text = new JsonFields(json).String("image");
            if (string.IsNullOrWhiteSpace(text))
                throw ApiException.BadRequest("image", "Missing required parameter: 'image' (a base64 PNG, optionally a data: URL).", "missing_required_parameter");
            Dictionary<string, string> items;
            try
            {
                items = PngTextReader.Read(UploadedImage.Base64Bytes(text, "image"));
            }
            catch (InvalidDataException e)
            {
                throw ApiException.BadRequest("image", $"Invalid 'image': {e.Message}.", "invalid_image");
            }
            var info = items.Remove("parameters", out var parameters) ? parameters : "";
            return Results.Json(new { info, items, parameters = InfotextParser.Parse(info) });
        });
}
