using LocalDiffusion.Pipeline;
using Microsoft.Extensions.Logging;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Server.Models;

/// <summary>
/// The models a server serves, by id (folder name). Loading starts at once for all of them, in the background and
/// one after the other (two big models loading at once would only compete for the same disk and cores).
/// </summary>
internal sealed class ModelCatalog : IDisposable
{
    // Names the OpenAI SDKs and older clients send by default; they mean "the default model" here, so such clients work unchanged.
    private static readonly HashSet<string> OpenAiModelNames = new(StringComparer.OrdinalIgnoreCase)
    {
        "dall-e-2", "dall-e-3", "gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5",
    };

    private readonly List<ServedModel> _models = [];
    private readonly ILogger _logger;

    /// <param name="folders">The model folders; ids are their names.</param>
    /// <param name="options">How each model is opened.</param>
    /// <param name="logger">Where loads are reported.</param>
    /// <param name="gate">Loading waits for it; cancelled: nothing loads.</param>
    public ModelCatalog(IReadOnlyList<string> folders, PipelineOptions options, ILogger logger, Task? gate = null)
    {
        _logger = logger;
        var previous = gate ?? Task.CompletedTask;
        foreach (var folder in folders)
        {
            var id = IdOf(folder);
            if (_models.Any(m => string.Equals(m.Id, id, StringComparison.OrdinalIgnoreCase)))
                throw new InvalidRequestException(nameof(folders), null, null, called => $"Two model {called} are both called '{id}' ({_models.First(m => m.Id == id).Path} and {folder}); model ids are folder names and must differ.");
            var after = previous;
            var loading = Task.Run(async () =>
            {
                await after.ContinueWith(_ => { }, TaskScheduler.Default);
                // The server never started (its port was taken): nothing will be served, so nothing is loaded.
                if (gate is { IsCanceled: true }) throw new OperationCanceledException("The server did not start.");
                return Load(id, folder, options);
            });
            previous = loading;
            _models.Add(new ServedModel(id, Path.GetFullPath(folder), loading));
        }
        if (_models.Count == 0) throw new InvalidRequestException(nameof(folders), null, null, _ => "No model to serve.");
    }

    public IReadOnlyList<ServedModel> All => _models;

    public ServedModel Default => _models[0];

    /// <summary>Completes when every model has loaded or failed.</summary>
    public Task WhenLoaded => Task.WhenAll(_models.Select(m => m.Loading.ContinueWith(_ => { }, TaskScheduler.Default)));

    /// <summary>The model called <paramref name="id"/> (null or an OpenAI model name: the default); 404 when unknown.</summary>
    public ServedModel Get(string? id)
    {
        if (string.IsNullOrEmpty(id) || OpenAiModelNames.Contains(id)) return Default;
        return _models.FirstOrDefault(m => string.Equals(m.Id, id, StringComparison.OrdinalIgnoreCase))
            ?? throw Errors.ApiException.ModelNotFound(id, _models.Select(m => m.Id));
    }

    /// <summary>Folders under <paramref name="directory"/> that hold a model (a model_index.json, or Black Forest Labs' FLUX.1 layout), by name.</summary>
    public static IEnumerable<string> FoldersIn(string directory)
    {
        if (!Directory.Exists(directory))
            throw new DirectoryNotFoundException($"Models directory {directory} does not exist.");
        return Directory.EnumerateDirectories(directory)
            .Where(StableDiffusionPipeline.IsModelFolder)
            .Order(StringComparer.Ordinal);
    }

    private static string IdOf(string folder) =>
        Path.GetFileName(Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar));

    private StableDiffusionPipeline Load(string id, string folder, PipelineOptions options)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            var pipeline = StableDiffusionPipeline.Load(folder, options);
            _logger.LogInformation("Model {Model} ready ({Folder}, {Width}x{Height}, {Device}) in {Seconds:F1} s",
                id, folder, pipeline.Info.NativeWidth, pipeline.Info.NativeHeight, pipeline.Info.Device, clock.Elapsed.TotalSeconds);
            return pipeline;
        }
        catch (Exception e)
        {
            _logger.LogError("Model {Model} failed to load: {Message}", id, e.Message);
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var model in _models)
        {
            try
            {
                model.Loading.Wait();
            }
            catch (AggregateException)
            {
                continue; // it never loaded: nothing to release
            }
            model.Loading.Result.Dispose();
        }
    }
}
