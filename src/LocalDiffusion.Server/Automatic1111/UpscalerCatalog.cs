using System.Collections.Concurrent;
using LocalDiffusion.Upscaling;

namespace LocalDiffusion.Server.Automatic1111;

/// <summary>
/// The upscalers this server offers: A1111's built-ins (None, Lanczos, Nearest) and each <c>NAME.onnx</c> of
/// <c>--upscaler-dir</c>, opened on first use and kept open (a broken file fails the request that names it, naming the file).
/// </summary>
internal sealed class UpscalerCatalog(string? directory, string device, int? threads) : IDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<ImageUpscaler>> _models = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _scales = new(StringComparer.Ordinal);

    /// <summary>The .onnx files of the folder by name (file name without extension), in name order.</summary>
    public IReadOnlyList<(string Name, string Path)> Files => directory is null ? [] :
        [.. Directory.GetFiles(directory, "*.onnx").Select(f => (Path.GetFileNameWithoutExtension(f), Path.GetFullPath(f))).OrderBy(f => f.Item1, StringComparer.Ordinal)];

    /// <summary>Every name a request may use: the built-ins, then the folder's models.</summary>
    public IEnumerable<string> Names => HiresPlan.BuiltInUpscalers.Concat(Files.Select(f => f.Name));

    /// <summary>Whether <paramref name="name"/> is one of A1111's built-ins.</summary>
    public static bool IsBuiltIn(string name) => HiresPlan.BuiltInUpscalers.Contains(name);

    /// <summary>The model named <paramref name="name"/>, opened on first use; null when the folder has no such file.</summary>
    public ImageUpscaler? Find(string name)
    {
        var file = Files.FirstOrDefault(f => f.Name == name).Path;
        if (file is null) return null;
        return _models.GetOrAdd(name, _ => new Lazy<ImageUpscaler>(() => ImageUpscaler.Load(file, new UpscalerOptions { Device = device, IntraOpThreads = threads }))).Value;
    }

    /// <summary>
    /// The scale of the model named <paramref name="name"/> for the listing: an open model's, else found by opening it
    /// once and closing it again (a listing must not keep every model of the folder in memory), then remembered.
    /// </summary>
    public int? ScaleOf(string name)
    {
        if (_models.TryGetValue(name, out var open) && open.IsValueCreated) return open.Value.Scale;
        if (_scales.TryGetValue(name, out var known)) return known;
        var file = Files.FirstOrDefault(f => f.Name == name).Path;
        if (file is null) return null;
        using var model = ImageUpscaler.Load(file, new UpscalerOptions { Device = device, IntraOpThreads = threads });
        return _scales[name] = model.Scale;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var model in _models.Values)
            if (model.IsValueCreated) model.Value.Dispose();
    }
}
