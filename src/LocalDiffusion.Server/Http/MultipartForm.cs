using System.Text.Json;
using System.Text.Json.Nodes;
using LocalDiffusion.Server.Errors;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace LocalDiffusion.Server.Http;

/// <summary>
/// A <c>multipart/form-data</c> request (OpenAI's edits and variations): its text fields as a JSON object of strings,
/// so <see cref="JsonFields"/> checks them exactly as it checks JSON bodies (it accepts numbers and booleans written as
/// strings), and its files, each limited in size (413 naming the field).
/// </summary>
internal sealed class MultipartForm
{
    private readonly IFormCollection _form;

    private MultipartForm(IFormCollection form, JsonElement fields)
    {
        _form = form;
        Fields = fields;
    }

    /// <summary>The text fields, first value of each name.</summary>
    public JsonElement Fields { get; }

    public static async Task<MultipartForm> ReadAsync(HttpContext context, long maxFileBytes)
    {
        var request = context.Request;
        if (!request.HasFormContentType || request.ContentType?.Contains("multipart/form-data", StringComparison.OrdinalIgnoreCase) != true)
            throw new ApiException(415, $"This endpoint takes multipart/form-data (the image as a file); got '{request.ContentType ?? "no Content-Type"}'.",
                "invalid_request_error", null, "unsupported_media_type");
        // Refused before the body is read: a client that sent 'Expect: 100-continue' (curl does for large uploads) then
        // never sends it, and one that did not still gets the 413 rather than a reset connection mid-upload.
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize is { } cap && request.ContentLength > cap)
            throw ApiException.TooLarge(cap);
        IFormCollection form;
        try
        {
            // Files are counted against the limit as they are read; the whole body is already capped by Kestrel.
            form = await request.ReadFormAsync(context.RequestAborted);
        }
        catch (BadHttpRequestException tooLarge) when (tooLarge.StatusCode == 413)
        {
            // Kestrel's cap on the whole body (BadHttpRequestException is an IOException: it must come first).
            throw ApiException.TooLarge(context.Features.Get<IHttpMaxRequestBodySizeFeature>()?.MaxRequestBodySize ?? 0);
        }
        catch (InvalidDataException e) when (e.Message.Contains("limit", StringComparison.OrdinalIgnoreCase))
        {
            // The form reader's own caps (a text field over 4 MiB, too many parts): the body is too large, not malformed.
            throw new ApiException(413, $"The multipart body is over a limit of this server: {e.Message}", "invalid_request_error", null, "request_too_large");
        }
        catch (InvalidDataException e)
        {
            throw new ApiException(400, $"The multipart body could not be read: {e.Message}", "invalid_request_error", null, "invalid_multipart");
        }
        catch (IOException e) when (!context.RequestAborted.IsCancellationRequested)
        {
            // A body that ends before its closing boundary (the client is still there: it sent a broken body).
            throw new ApiException(400, $"The multipart body could not be read: {e.Message}", "invalid_request_error", null, "invalid_multipart");
        }
        foreach (var file in form.Files)
            if (file.Length > maxFileBytes)
                throw new ApiException(413, $"'{file.Name}' is {file.Length} bytes; this server accepts image files up to {maxFileBytes} bytes.",
                    "invalid_request_error", file.Name.TrimEnd('[', ']'), "file_too_large");
        var fields = new JsonObject();
        foreach (var (name, values) in form)
            if (values.Count > 0) fields[name] = values[0];
        using var document = JsonDocument.Parse(fields.ToJsonString());
        return new MultipartForm(form, document.RootElement.Clone());
    }

    /// <summary>The files sent under any of <paramref name="names"/> (e.g. <c>image</c> and <c>image[]</c>), in the order sent.</summary>
    public IReadOnlyList<IFormFile> Files(params string[] names) =>
        _form.Files.Where(f => names.Contains(f.Name, StringComparer.Ordinal)).ToList();

    /// <summary>True when a text field (not a file) came under <paramref name="name"/>: a client that sent a path or a URL instead of the file.</summary>
    public bool HasText(string name) => _form.ContainsKey(name);

    public static async Task<byte[]> ReadAllAsync(IFormFile file, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream((int)file.Length);
        await using var stream = file.OpenReadStream();
        await stream.CopyToAsync(buffer, cancellationToken);
        return buffer.ToArray();
    }
}
