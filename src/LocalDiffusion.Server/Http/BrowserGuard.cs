using LocalDiffusion.Server.Errors;
using Microsoft.AspNetCore.Http;

namespace LocalDiffusion.Server.Http;

/// <summary>
/// Keeps web pages the user happens to visit from driving the server. A request whose <c>Host</c> is not one of this
/// server's names is refused (DNS rebinding), and so is a state-changing request (anything but GET, HEAD and OPTIONS)
/// sent by a page of another origin, unless <c>--cors-origin</c> lists it. The server's own web UI is same-origin; programs
/// that are not browsers send no <c>Origin</c> and are unaffected. Reads need no check: without CORS headers the browser
/// hides the answer from the other page. Both refusals are 403 with an OpenAI-shaped error naming the header.
/// </summary>
internal sealed class BrowserGuard(RequestDelegate next, ServerOptions options)
{
    private readonly AllowedHosts _hosts = new(options);
    private readonly HashSet<string> _corsOrigins = new(options.CorsOrigins.Select(ServerOptions.NormaliseOrigin), StringComparer.OrdinalIgnoreCase);
    private readonly string? _publicOrigin = options.PublicUrl is { } url ? url.GetLeftPart(UriPartial.Authority) : null;

    public Task InvokeAsync(HttpContext context)
    {
        var request = context.Request;
        if (!_hosts.Allows(request.Host.Host))
            return ErrorWriter.WriteAsync(context, new ApiException(403,
                $"The Host header '{request.Host.Host}' is not a name of this server, so the request was refused (a page on another site can point its own " +
                "name at this machine). If clients reach the server under that name, start it with --allowed-host " + request.Host.Host + " (or --public-url).",
                "invalid_request_error", "Host", "host_not_allowed"));
        if (HttpMethods.IsGet(request.Method) || HttpMethods.IsHead(request.Method) || HttpMethods.IsOptions(request.Method)) return next(context);

        var origin = request.Headers.Origin.ToString();
        if (origin.Length == 0)
        {
            // Browsers send Origin with every cross-origin POST; Sec-Fetch-Site covers one that somehow does not.
            var site = request.Headers["Sec-Fetch-Site"].ToString();
            return site is "" or "same-origin" or "none" ? next(context) : Refuse(context, $"a {site} page");
        }
        if (IsOwnOrigin(request, origin) || _corsOrigins.Contains(origin)) return next(context);
        return Refuse(context, $"a page from {origin}");
    }

    private bool IsOwnOrigin(HttpRequest request, string origin)
    {
        if (!Uri.TryCreate(origin, UriKind.Absolute, out var uri)) return false; // includes "null" (sandboxed frames, file: pages)
        var left = uri.GetLeftPart(UriPartial.Authority);
        if (_publicOrigin is not null && string.Equals(left, _publicOrigin, StringComparison.OrdinalIgnoreCase)) return true;
        var port = request.Host.Port ?? (request.IsHttps ? 443 : 80);
        return string.Equals(uri.Scheme, request.Scheme, StringComparison.OrdinalIgnoreCase)
            && string.Equals(uri.IdnHost.Trim('[', ']'), request.Host.Host.Trim('[', ']'), StringComparison.OrdinalIgnoreCase)
            && uri.Port == port;
    }

    private static Task Refuse(HttpContext context, string who) => ErrorWriter.WriteAsync(context, new ApiException(403,
        $"Refused a {context.Request.Method} from {who}: other web sites may not drive this server. To let a page of yours call it, start the server " +
        "with --cors-origin ORIGIN (e.g. --cors-origin http://localhost:3000).", "invalid_request_error", "Origin", "cross_origin_refused"));
}
