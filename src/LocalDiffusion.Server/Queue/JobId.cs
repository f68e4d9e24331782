using System.Buffers;
using LocalDiffusion.Server.Errors;
using Microsoft.AspNetCore.Http;

namespace LocalDiffusion.Server.Queue;

/// <summary>
/// The id a generation is known by in <c>/v1/queue</c>: the client's <c>X-LocalDiffusion-Job-Id</c> header, so it can
/// cancel a job before its response starts, or else the server's request id.
/// </summary>
internal static class JobId
{
    /// <summary>The request header a client names its job with.</summary>
    public const string Header = "X-LocalDiffusion-Job-Id";

    private const int MaxLength = 64;

    private static readonly SearchValues<char> Allowed = SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-");

    /// <summary>The request's job id; a malformed header is a 400 naming it.</summary>
    public static string Of(HttpContext context)
    {
        var values = context.Request.Headers[Header];
        if (values.Count == 0) return context.TraceIdentifier;
        var id = values.Count == 1 ? values[0] ?? "" : "";
        if (!IsValid(id))
            throw ApiException.BadRequest(Header, $"Invalid '{Header}' header: send one id of 1 to {MaxLength} characters from A-Z, a-z, 0-9, '_' and '-'.");
        return id;
    }

    /// <summary>1–64 characters of [A-Za-z0-9_-].</summary>
    public static bool IsValid(string id) => id.Length is > 0 and <= MaxLength && !id.AsSpan().ContainsAnyExcept(Allowed);
}
