using System.Text.Json;
using LocalDiffusion.Server.Errors;
using Microsoft.AspNetCore.Http;

namespace LocalDiffusion.Server.Http;

/// <summary>Reads a JSON object request body, refusing bodies over the limit (413) and anything that is not a JSON object (400).</summary>
internal static class JsonBody
{
    public static async Task<JsonElement> ReadObjectAsync(HttpContext context, long limit)
    {
        var request = context.Request;
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
        try
        {
            using var document = JsonDocument.Parse(buffer.GetBuffer().AsMemory(0, (int)buffer.Length));
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new ApiException(400, "The request body must be a JSON object.", "invalid_request_error", null, "invalid_json");
            return document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new ApiException(400, $"The request body is not valid JSON: {e.Message}", "invalid_request_error", null, "invalid_json");
        }
    }
}
