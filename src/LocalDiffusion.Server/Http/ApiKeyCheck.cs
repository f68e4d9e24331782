using System.Security.Cryptography;
using System.Text;
using LocalDiffusion.Server.Errors;
using Microsoft.AspNetCore.Http;

namespace LocalDiffusion.Server.Http;

/// <summary>
/// With an API key configured, the API routes (/v1, /sdapi, /metrics) need <c>Authorization: Bearer KEY</c>, or HTTP
/// Basic with the key as the password (any user name), which is how A1111 clients (SillyTavern, Open WebUI) send
/// A1111's <c>--api-auth</c>. The web UI's own files and /health stay open (the UI asks for the key and sends it), and so
/// do the image files: plain &lt;img&gt; and download links cannot send headers, so their unguessable ids are the
/// credential. Compared in constant time.
/// </summary>
internal sealed class ApiKeyCheck(RequestDelegate next, ServerOptions options, Hosting.LocalDiffusionRoutes routes)
{
    private readonly byte[] _expected = SHA256.HashData(Encoding.UTF8.GetBytes(options.ApiKey ?? ""));
    private readonly bool _required = options.ApiKey is not null;

    public Task InvokeAsync(HttpContext context)
    {
        if (!_required || !routes.IsProtected(context.Request.Path) || HttpMethods.IsOptions(context.Request.Method)) return next(context);
        var header = context.Request.Headers.Authorization.ToString();
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) && Matches(header["Bearer ".Length..].Trim())) return next(context);
        if (header.StartsWith("Basic ", StringComparison.OrdinalIgnoreCase) && BasicPassword(header["Basic ".Length..].Trim()) is { } password && Matches(password))
            return next(context);
        return ErrorWriter.WriteAsync(context, ApiException.Unauthorized());
    }

    private bool Matches(string given) => CryptographicOperations.FixedTimeEquals(SHA256.HashData(Encoding.UTF8.GetBytes(given)), _expected);

    // "user:password" in base64; null when it is not that.
    private static string? BasicPassword(string encoded)
    {
        var bytes = new byte[encoded.Length];
        if (!Convert.TryFromBase64String(encoded, bytes, out var length)) return null;
        var text = Encoding.UTF8.GetString(bytes, 0, length);
        var colon = text.IndexOf(':');
        return colon < 0 ? null : text[(colon + 1)..];
    }

}
