using LocalDiffusion.Model;
using System.Diagnostics;

namespace LocalDiffusion.Pipeline;

/// <summary>
/// Tracing of generations on an <see cref="ActivitySource"/> named <see cref="ActivitySourceName"/>, which OpenTelemetry
/// (<c>AddSource("LocalDiffusion")</c>) or any <see cref="ActivityListener"/> picks up: a <c>localdiffusion.generate</c>
/// span per generation with children <c>localdiffusion.encode_prompt</c>, <c>localdiffusion.denoise</c> (an event per
/// denoiser evaluation) and <c>localdiffusion.decode</c>. With no listener nothing is created; step events are added
/// only to a span a listener records, so tracing costs nothing when unused.
/// </summary>
public static class LocalDiffusionTelemetry
{
    /// <summary>The <see cref="ActivitySource"/>'s name: <c>LocalDiffusion</c>.</summary>
    public const string ActivitySourceName = "LocalDiffusion";

    internal static ActivitySource Source { get; } = new(ActivitySourceName, typeof(LocalDiffusionTelemetry).Assembly.GetName().Version?.ToString());

    /// <summary>The span of one generation (or one engine batch), tagged with what it runs.</summary>
    internal static Activity? StartGenerate(ModelInfo info, GenerationRequest request, int width, int height, int requests = 1)
    {
        var activity = Source.StartActivity("localdiffusion.generate");
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag("localdiffusion.model", Path.GetFileName(info.Root.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar)));
            activity.SetTag("localdiffusion.family", info.Family.Name);
            activity.SetTag("localdiffusion.width", width);
            activity.SetTag("localdiffusion.height", height);
            activity.SetTag("localdiffusion.steps", request.StepCount);
            activity.SetTag("localdiffusion.images", request.ImageCount);
            if (requests > 1) activity.SetTag("localdiffusion.batch.requests", requests);
        }
        return activity;
    }

    internal static Activity? StartStage(string name) => Source.StartActivity(name);

    /// <summary>Marks one denoiser evaluation on the denoise span: only when a listener records it.</summary>
    internal static void Step(Activity? denoise, int step, int total)
    {
        if (denoise is not { IsAllDataRequested: true }) return;
        denoise.AddEvent(new ActivityEvent("step", tags: new ActivityTagsCollection { ["step"] = step, ["total"] = total }));
    }

    /// <summary>An exception filter that marks the span failed and catches nothing.</summary>
    internal static bool FailFilter(Activity? activity, Exception e)
    {
        Fail(activity, e);
        return false;
    }

    /// <summary>Marks the span failed (not for a cancellation, which is the caller's choice).</summary>
    internal static void Fail(Activity? activity, Exception e)
    {
        if (activity is null || e is OperationCanceledException) return;
        activity.SetStatus(ActivityStatusCode.Error, e.Message);
    }
}
