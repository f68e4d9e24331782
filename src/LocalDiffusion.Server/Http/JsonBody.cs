using System.Text.Json;
using LocalDiffusion.Server.Errors;
using Microsoft.AspNetCore.Http;

namespace LocalDiffusion.Server.Http;

/// <summary>
/// Reads a JSON object request body: <c>Content-Type: application/json</c> only (415 otherwise: a CORS-simple
/// <c>text/plain</c> body is how another site's page would sneak a request in), at most the limit (413), a JSON object
/// (400), and text that is valid Unicode everywhere (400 naming the field for invalid UTF-8 or a lone surrogate escape).
/// </summary>
internal static class JsonBody
{
    public static async Task<JsonElement> ReadObjectAsync(HttpContext context, long limit)
    {
        var request = context.Request;
        RequireJsonContentType(request);
        if (request.ContentLength > limit) throw ApiException.TooLarge(limit);
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, context.RequestAborted)) > 0)
        {
            if (buffer.Length + read > limit) throw ApiException.TooLarge(limit);
            buffer.Write(chunk, 0, read);
        }
        if (buffer.Length == 0)
            throw new ApiException(400, "The request body is empty; send a JSON object.", "invalid_request_error", null, "invalid_json");
        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(buffer.GetBuffer().AsMemory(0, (int)buffer.Length));
            root = document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new ApiException(400, $"The request body is not valid JSON: {e.Message}", "invalid_request_error", null, "invalid_json");
        }
        if (root.ValueKind != JsonValueKind.Object)
            throw new ApiException(400, "The request body must be a JSON object.", "invalid_request_error", null, "invalid_json");
        CheckText(root, "");
        return root;
    }

    /// <summary>415 unless the body is declared JSON (<c>application/json</c> or <c>application/*+json</c>, UTF-8 if a charset is given).</summary>
    public static void RequireJsonContentType(HttpRequest request)
    {
        var declared = request.ContentType;
        if (declared is not null && Microsoft.Net.Http.Headers.MediaTypeHeaderValue.TryParse(declared, out var type)
            && (type.MediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
                || (type.MediaType.StartsWith("application/", StringComparison.OrdinalIgnoreCase) && type.MediaType.EndsWith("+json", StringComparison.OrdinalIgnoreCase)))
            && (type.Charset.Length == 0 || type.Charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase) || type.Charset.Equals("utf8", StringComparison.OrdinalIgnoreCase)))
            return;
        throw new ApiException(415,
            $"This endpoint takes a JSON body with 'Content-Type: application/json'; got '{declared ?? "no Content-Type"}'" +
            " (with curl, add -H 'Content-Type: application/json').", "invalid_request_error", null, "unsupported_media_type");
    }

    // System.Text.Json parses lazily: a raw invalid UTF-8 byte or an escaped lone surrogate ("\ud83d") only fails when the
    // string is read, deep inside a handler. Every name and string is read here once, so the failure names its field.
    private static void CheckText(JsonElement element, string path)
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    var name = Read(() => property.Name, path.Length == 0 ? "a field name" : $"a field name in '{path}'");
                    CheckText(property.Value, path.Length == 0 ? name : $"{path}.{name}");
                }
                break;
            case JsonValueKind.Array:
                var i = 0;
                foreach (var item in element.EnumerateArray()) CheckText(item, $"{path}[{i++}]");
                break;
            case JsonValueKind.String:
                Read(() => element.GetString()!, $"'{path}'");
                break;
        }
    }

    private static string Read(Func<string> read, string what)
    {
        string text;
        try
        {
            text = read();
        }
        catch (InvalidOperationException)
        {
            throw Invalid(what);
        }
        // A lone surrogate escape can also survive decoding as an unpaired UTF-16 unit.
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) i++;
            else if (char.IsSurrogate(text[i])) throw Invalid(what);
        }
        return text;
    }

    private static ApiException Invalid(string what) => new(400,
        $"The request body is not valid JSON text: {what} holds invalid UTF-8 or an unpaired surrogate escape (\\uD800–\\uDFFF without its pair).",
        "invalid_request_error", what.StartsWith('\'') ? what.Trim('\'') : null, "invalid_json");
}
