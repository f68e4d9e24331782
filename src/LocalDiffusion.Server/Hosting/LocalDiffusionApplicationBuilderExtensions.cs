using LocalDiffusion.Server;
using LocalDiffusion.Server.Errors;
using LocalDiffusion.Server.Hosting;
using LocalDiffusion.Server.Http;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.DependencyInjection;

namespace Microsoft.AspNetCore.Builder;

/// <summary>LocalDiffusion's middleware in an app that called <c>services.AddLocalDiffusion(…)</c>.</summary>
public static class LocalDiffusionApplicationBuilderExtensions
{
    /// <summary>
    /// Adds, for the LocalDiffusion routes only (the ones mapped with the <c>MapLocalDiffusion…</c>/<c>MapAutomatic1111</c>
    /// calls; the app's own routes are untouched): the request log, OpenAI-shaped errors (and 404/405 bodies, HEAD
    /// answered as GET), the browser guard (Host allow-list, cross-origin refusals), CORS for
    /// <see cref="ServerOptions.CorsOrigins"/>, the upload size limit and the API key check. It calls <c>UseRouting</c>
    /// itself, between the two halves: call it where routing would go (before <c>UseRouting</c>, authentication, …).
    /// </summary>
    /// <param name="app">The app.</param>
    public static IApplicationBuilder UseLocalDiffusion(this IApplicationBuilder app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var server = app.ApplicationServices.GetService<ServerContext>()
            ?? throw new InvalidOperationException("LocalDiffusion is not registered: call builder.Services.AddLocalDiffusion(…) first.");
        var options = server.Options;
        var routes = server.Routes;
        if (routes.OwnsEverything)
        {
            // The standalone server: every request is its own, in this order (its Kestrel enforces the upload limit).
            app.UseMiddleware<RequestLog>();
            app.UseMiddleware<ErrorMiddleware>();
            app.UseMiddleware<BrowserGuard>(options);
            app.UseMiddleware<StatusCodeErrors>();
            app.UseRouting(); // after StatusCodeErrors, which lets HEAD match GET routes
            if (options.CorsOrigins.Count > 0) app.UseCors(LocalDiffusionServices.CorsPolicy);
            app.UseMiddleware<ApiKeyCheck>(options, routes);
            return app;
        }

        Func<HttpContext, bool> ours = context => routes.Owns(context.Request.Path);
        app.UseWhen(ours, branch =>
        {
            branch.UseMiddleware<RequestLog>();
            branch.UseMiddleware<ErrorMiddleware>();
            branch.UseMiddleware<BrowserGuard>(options);
            branch.UseMiddleware<StatusCodeErrors>();
            branch.Use((context, next) =>
            {
                // The host's Kestrel limit is its own (30 MB by default): the API's uploads get MaxUploadBytes.
                if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = options.MaxUploadBytes;
                return next(context);
            });
        });
        app.UseRouting();
        app.UseWhen(ours, branch =>
        {
            if (options.CorsOrigins.Count > 0) branch.UseCors(LocalDiffusionServices.CorsPolicy);
            branch.UseMiddleware<ApiKeyCheck>(options, routes);
        });
        return app;
    }
}
