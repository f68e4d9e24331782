using LocalDiffusion.Pipeline;
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

    /// <summary>The model's tokenizer, for reporting how a long prompt was cut; null when it cannot be read on its own.</summary>
    public LocalDiffusion.Tokenizer.ClipTokenizer? Tokenizer => _tokenizer.Value;

    private readonly Lazy<LocalDiffusion.Tokenizer.ClipTokenizer?> _tokenizer = new(() =>
    {
        try
        {
            return LocalDiffusion.Tokenizer.ClipTokenizer.Load(System.IO.Path.Combine(path, "tokenizer"));
        }
        catch (Exception e) when (e is IOException or InvalidDataException or LocalDiffusion.Tokenizer.TokenizerFileException or UnauthorizedAccessException)
        {
            return null;
        }
    });

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
