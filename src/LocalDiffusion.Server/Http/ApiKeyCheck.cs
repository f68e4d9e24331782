using System.Security.Cryptography;
using System.Text;
using LocalDiffusion.Server.Errors;
using Microsoft.AspNetCore.Http;

namespace LocalDiffusion.Server.Http;

/// <summary>
/// With an API key configured, the API routes (/v1, /sdapi, /metrics) need <c>Authorization: Bearer KEY</c>; the web
/// UI's own files and /health stay open (the UI asks for the key and sends it), and so do the image files: plain &lt;img&gt; and
/// download links cannot send headers, so their unguessable ids are the credential. Compared in constant time.
/// </summary>
internal sealed class ApiKeyCheck(RequestDelegate next, ServerOptions options, Hosting.LocalDiffusionRoutes routes)
{
    private readonly byte[]? _expected = options.ApiKey is null ? null : SHA256.HashData(Encoding.UTF8.GetBytes(options.ApiKey));

    public Task InvokeAsync(HttpContext context)
    {
        if (_expected is null || !routes.IsProtected(context.Request.Path) || HttpMethods.IsOptions(context.Request.Method)) return next(context);
        var header = context.Request.Headers.Authorization.ToString();
        const string prefix = "Bearer ";
        if (header.StartsWith(prefix, StringComparison.OrdinalIgnoreCase))
        {
            var given = SHA256.HashData(Encoding.UTF8.GetBytes(header[prefix.Length..].Trim()));
            if (CryptographicOperations.FixedTimeEquals(given, _expected)) return next(context);
        }
        return ErrorWriter.WriteAsync(context, ApiException.Unauthorized());
    }
}
