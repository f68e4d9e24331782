using LocalDiffusion.Errors;
using LocalDiffusion.Schedulers;
using LocalDiffusion.Server.Errors;

namespace LocalDiffusion.Server.Automatic1111;

/// <summary>
/// A1111 1.9+ sends the noise schedule apart from the sampler (<c>"sampler_name": "DPM++ 2M", "scheduler": "Karras"</c>),
/// as SillyTavern and newer clients do; here schedules are part of the sampler names ("DPM++ 2M Karras"), so the two are
/// joined. Automatic and Uniform mean the sampler's own schedule; Karras, Exponential and Beta exist where the registry
/// has that variant; A1111's other schedules (SGM Uniform, Align Your Steps, …) are refused naming <c>scheduler</c>.
/// </summary>
internal static class A1111Schedules
{
    private static readonly (string Name, string Label)[] Known =
        [("automatic", "Automatic"), ("uniform", "Uniform"), ("karras", "Karras"), ("exponential", "Exponential"), ("beta", "Beta")];

    /// <summary>What /sdapi/v1/schedulers lists, in A1111's shape.</summary>
    public static object List { get; } = Known.Select(k => new { name = k.Name, label = k.Label, aliases = (string[]?)null, default_rho = k.Name == "karras" ? 7.0 : -1.0, need_inner_model = false }).ToArray();

    /// <summary>The sampler name to run (null: the model's own), checked; 400 naming the field that is wrong.</summary>
    public static string? Combine(string? sampler, string? schedule)
    {
        var registry = SchedulerRegistry.Default;
        if (sampler is not null) RequireKnown(sampler, "sampler_name");
        var key = schedule?.Trim().ToLowerInvariant();
        if (key is null or "" or "automatic" or "uniform") return sampler;
        if (!Known.Any(k => k.Name == key))
            throw ApiException.BadRequest("scheduler", $"scheduler '{schedule}' is not supported; use one of {string.Join(", ", Known.Select(k => k.Label))}.");
        if (sampler is null)
            throw ApiException.BadRequest("scheduler", $"scheduler '{schedule}' needs a sampler_name to apply to (e.g. \"DPM++ 2M\").");
        var label = Known.First(k => k.Name == key).Label;
        var display = registry.Describe(sampler).DisplayName;
        if (display.EndsWith(" " + label, StringComparison.Ordinal)) return sampler;
        var combined = $"{display} {label}";
        return Exists(registry, combined) ? combined
            : throw ApiException.BadRequest("scheduler", $"'{display}' has no {label} schedule here; GET /sdapi/v1/samplers lists the combinations that exist.");
    }

    /// <summary>A 400 naming <paramref name="field"/> (with the registry's list of names) unless <paramref name="name"/> is a sampler.</summary>
    public static void RequireKnown(string name, string field)
    {
        try
        {
            _ = SchedulerRegistry.Default.Describe(name);
        }
        catch (ArgumentException e)
        {
            throw ApiException.BadRequest(field, RequestFields.MessageFor(e, FrontEnd.Library));
        }
    }

    private static bool Exists(SchedulerRegistry registry, string name)
    {
        try
        {
            _ = registry.Describe(name);
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
