using System.Security.Cryptography;
using System.Text;
using LocalDiffusion.Server.Errors;
using Microsoft.AspNetCore.Http;

namespace LocalDiffusion.Server.Http;

/// <summary>
/// With an API key configured, the API routes (/v1, /sdapi, /metrics) need <c>Authorization: Bearer KEY</c>; the web
/// UI's own files and /health stay open (the UI asks for the key and sends it). Compared in constant time.
/// </summary>
internal sealed class ApiKeyCheck(RequestDelegate next, ServerOptions options)
{
    private readonly byte[]? _expected = options.ApiKey is null ? null : SHA256.HashData(Encoding.UTF8.GetBytes(options.ApiKey));

    public Task InvokeAsync(HttpContext context)
    {
        if (_expected is null || !IsProtected(context.Request.Path) || HttpMethods.IsOptions(context.Request.Method)) return next(context);
        var header = context.Request.Headers.Authorization.ToString();
        const string prefix = "Bearer ";
        if (header.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
        {
            var given = SHA256.HashData(Encoding.UTF8.GetBytes(header[prefix.Length..].Trim()));
            if (CryptographicOperations.FixedTimeEquals(given, _expected)) return next(context);
        }
        return ErrorWriter.WriteAsync(context, ApiException.Unauthorized());
    }

    // Image files are fetched by plain <img>/download links, which cannot send headers: their unguessable ids are the credential.
    private static bool IsProtected(PathString path) =>
        (path.StartsWithSegments("/v1") && !path.StartsWithSegments("/v1/images/files"))
        || path.StartsWithSegments("/sdapi") || path.StartsWithSegments("/metrics");
}
