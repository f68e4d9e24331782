using System.Text.Json;

namespace LocalDiffusion.Onnx;

/// <summary>
/// The files by which the model cache recognises its own folders. Every folder it writes carries a JSON marker with
/// <see cref="Tag"/>, <see cref="Format"/> and the folder's own name (an entry: its key), so that clearing the cache can
/// tell its folders from anything a user keeps in the same place, and never deletes the latter.
/// </summary>
internal static class ModelCacheRecords
{
    /// <summary>The tag every marker carries.</summary>
    public const string Tag = "localdiffusion-model-cache";

    /// <summary>The marker format (1: entry.json of versions before the tag, without content hashes).</summary>
    public const int Format = 2;

    /// <summary>An entry's marker: its record, written last, when the entry is complete.</summary>
    public const string EntryFileName = "entry.json";

    /// <summary>A staging folder's marker, written when the folder is made and removed before it becomes the entry.</summary>
    public const string StagingFileName = "staging.json";

    /// <summary>A TensorRT engine folder's marker (TensorRT writes the engines and timing caches beside it).</summary>
    public const string TensorRtFileName = "tensorrt-entry.json";

    /// <summary>Reads a JSON marker; null when it is absent or not readable as <typeparamref name="T"/>.</summary>
    public static T? Read<T>(string path) where T : class
    {
        try
        {
            return File.Exists(path) ? JsonSerializer.Deserialize<T>(File.ReadAllText(path)) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or NotSupportedException)
        {
            return null;
        }
    }

    /// <summary>Writes a JSON marker.</summary>
    public static void Write<T>(string path, T value) => File.WriteAllText(path, JsonSerializer.Serialize(value));
}

/// <summary>What entry.json records: the marker, enough to list the entry, and each stored file's size, time and hashes.</summary>
internal sealed record EntryRecord(string Tag, int Format, string Key, string Component, string Source, string OnnxRuntime, string Provider,
    Dictionary<string, CacheFileRecord> Files)
{
    /// <summary>Whether this is a current, well-formed record for a folder named <paramref name="folderName"/>.</summary>
    public bool Describes(string folderName) =>
        Tag == ModelCacheRecords.Tag && Format == ModelCacheRecords.Format && Files is not null
        && Key is { Length: > 0 } && Component is { Length: > 0 } && folderName == ModelCache.FolderName(Component, Key);
}

/// <summary>The marker of a staging or TensorRT folder: the entry name the folder belongs to.</summary>
internal sealed record FolderMarker(string Tag, int Format, string Entry);
