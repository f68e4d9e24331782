namespace LocalDiffusion.Server.Models;

/// <summary>One model folder the server serves, loaded in the background so the server answers (503) while it loads.</summary>
internal sealed class ServedModel(string id, string path, Task<StableDiffusionPipeline> loading)
{
    /// <summary>The model id clients send: the folder's name.</summary>
    public string Id { get; } = id;

    /// <summary>The model folder.</summary>
    public string Path { get; } = path;

    public Task<StableDiffusionPipeline> Loading { get; } = loading;

    public bool IsReady => Loading.IsCompletedSuccessfully;

    /// <summary>The loaded pipeline; 503 while loading, the load error (mapped to 500) when it failed.</summary>
    public StableDiffusionPipeline Pipeline
    {
        get
        {
            if (!Loading.IsCompleted) throw Errors.ApiException.ModelLoading(Id);
            return Loading.GetAwaiter().GetResult();
        }
    }

    public string State => Loading.Status switch
    {
        TaskStatus.RanToCompletion => "ready",
        TaskStatus.Faulted or TaskStatus.Canceled => "failed",
        _ => "loading",
    };
}
