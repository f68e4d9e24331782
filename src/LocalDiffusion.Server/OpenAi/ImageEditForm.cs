using System.Text.Json;
using System.Text.Json.Nodes;
using LocalDiffusion.Imaging;
using LocalDiffusion.Server.Errors;
using LocalDiffusion.Server.Http;
using LocalDiffusion.Server.Models;
using LocalDiffusion.Server.Uploads;

namespace LocalDiffusion.Server.OpenAi;

/// <summary>
/// The multipart bodies of <c>POST /v1/images/edits</c> and <c>POST /v1/images/variations</c>, parsed into the same
/// <see cref="ImageGenerationBody"/> generations use (so the reply, streaming and URLs are shared), with the engine's
/// init image, mask and strength set.
/// </summary>
internal static class ImageEditForm
{
    /// <summary>Strength of an edit without a mask: diffusers' img2img default. With a mask the repainted area starts from noise (1).</summary>
    public const float EditStrength = 0.8f;

    /// <summary>Strength of a variation: keeps the picture's layout and colours, changes the details (see docs/server.md).</summary>
    public const float VariationStrength = 0.6f;

    public static async Task<ImageGenerationBody> ParseEditAsync(MultipartForm form, ModelCatalog catalog, string? loraDirectory, CancellationToken cancellationToken)
    {
        var f = new JsonFields(form.Fields);
        var images = form.Files("image", "image[]");
        if (images.Count == 0) throw MissingImage(form);
        var body = ImageGenerationBody.Parse(form.Fields, catalog, strictTypes: false, loraDirectory);
        var warnings = new List<string>();
        // gpt-image models take several input pictures as references; a diffusion model starts from one. The first is used
        // (OpenAI applies the mask to the first image too), and the reply says the rest were not.
        if (images.Count > 1)
            warnings.Add($"{images.Count} images were sent; this server edits the first ('{images[0].FileName}') and ignores the other {images.Count - 1}.");
        _ = f.String("input_fidelity");
        var image = UploadedImage.Decode(await MultipartForm.ReadAllAsync(images[0], cancellationToken), "image");

        InitImage? mask = null;
        if (form.Files("mask") is [var maskFile, ..])
        {
            var maskImage = UploadedImage.Decode(await MultipartForm.ReadAllAsync(maskFile, cancellationToken), "mask");
            if (maskImage.Width != image.Width || maskImage.Height != image.Height)
                throw ApiException.BadRequest("mask", $"Invalid 'mask': it is {maskImage.Size} but the image is {image.Size}; the mask must be the same size as the image.");
            // OpenAI refuses a mask without an alpha channel; one with nothing transparent would edit nothing. Either is
            // most likely a black-and-white mask (A1111's convention, which /sdapi/v1/img2img takes).
            if (!maskImage.HasTransparentPixel())
                throw ApiException.BadRequest("mask", "Invalid 'mask': no pixel is fully transparent. Its fully transparent pixels (alpha 0) mark the area to edit: send a PNG with transparency (white = repaint masks go to /sdapi/v1/img2img).");
            mask = maskImage.MaskFromAlpha(alpha => alpha == 0);
        }
        else if (form.HasText("mask"))
        {
            throw ApiException.BadRequest("mask", "Invalid 'mask': send it as a file (a PNG with transparency), not as a text field.");
        }
        else if (image.HasTransparentPixel())
        {
            // dall-e-2's rule: without a mask, the image's own transparent pixels are the area to edit.
            mask = image.MaskFromAlpha(alpha => alpha == 0);
        }

        var strength = (float?)f.Double("strength", 0, 1);
        var request = body.Request with
        {
            InitImage = image.ToInitImage(),
            MaskImage = mask,
            Strength = strength ?? (mask is null ? EditStrength : 1f),
            MaskBlur = (float)(f.Double("mask_blur", 0, 64) ?? 0),
        };
        return body with { Request = request, Warnings = warnings, EventPrefix = "image_edit" };
    }

    public static async Task<ImageGenerationBody> ParseVariationAsync(MultipartForm form, ModelCatalog catalog, string? loraDirectory, CancellationToken cancellationToken)
    {
        var images = form.Files("image", "image[]");
        if (images.Count == 0) throw MissingImage(form);
        // The prompt is an extension here (OpenAI's variations take none): empty unless given.
        var fields = JsonNode.Parse(form.Fields.GetRawText())!.AsObject();
        fields["prompt"] ??= "";
        JsonElement json;
        using (var document = JsonDocument.Parse(fields.ToJsonString())) json = document.RootElement.Clone();
        var body = ImageGenerationBody.Parse(json, catalog, strictTypes: false, loraDirectory);
        var f = new JsonFields(json);
        var image = UploadedImage.Decode(await MultipartForm.ReadAllAsync(images[0], cancellationToken), "image");
        var request = body.Request with
        {
            InitImage = image.ToInitImage(),
            Strength = (float)(f.Double("strength", 0, 1) ?? VariationStrength),
        };
        // With both prompts empty the guided and unguided predictions are the same, so guidance changes nothing but
        // doubles the UNet's work: unless asked for, it is off (the same pictures, up to float rounding).
        if (request.Prompt.Length == 0 && request.NegativePrompt.Length == 0 && !f.Has("guidance_scale"))
            request = request with { GuidanceScale = 1f };
        return body with { Request = request };
    }

    private static ApiException MissingImage(MultipartForm form) => form.HasText("image")
        ? ApiException.BadRequest("image", "Invalid 'image': send the picture as a file (multipart/form-data), not as a text field.")
        : ApiException.BadRequest("image", "Missing required parameter: 'image' (a PNG, JPEG or WebP file).", "missing_required_parameter");
}
