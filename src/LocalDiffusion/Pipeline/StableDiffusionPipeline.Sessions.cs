namespace LocalDiffusion.Pipeline;

// Which sessions are open (for LowMemory's tests).
public sealed partial class StableDiffusionPipeline
{
    internal IReadOnlyList<string> OpenSessions() => [.. _model.Sessions.Where(c => c.IsLoaded).Select(c => c.Name)];
}
