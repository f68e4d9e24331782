using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace LocalDiffusion.Cli.Batch;

/// <summary>
/// A shard's manifest, <c>manifest-&lt;i&gt;-of-&lt;N&gt;.jsonl</c> in the output folder: one JSON record per picture,
/// appended just before the picture is renamed into place, so every picture has a record. One file per shard: shards
/// never write the same file. A record cut short by a kill is removed when the shard starts again, and a picture
/// made again after a kill (its record was written, its rename was not) is not recorded twice.
/// </summary>
internal sealed class BatchManifest
{
    // Readable records (DPM++ 2M, not DPM\u002B\u002B 2M); a file, not HTML, so nothing needs escaping for a browser.
    private static readonly JsonSerializerOptions Format = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private readonly HashSet<string> _recorded = new(StringComparer.Ordinal);

    private BatchManifest(string path) => Path = path;

    /// <summary>The manifest file.</summary>
    public string Path { get; }

    /// <summary>The manifest file name of <paramref name="shard"/>.</summary>
    public static string FileName(Shard shard) => $"manifest-{shard.Index}-of-{shard.Count}.jsonl";

    /// <summary>Opens (and repairs) the manifest of <paramref name="shard"/> in <paramref name="folder"/>.</summary>
    public static BatchManifest Open(BatchFolder folder, Shard shard)
    {
        var manifest = new BatchManifest(System.IO.Path.Combine(folder.Path, FileName(shard)));
        if (!File.Exists(manifest.Path)) return manifest;
        var bytes = File.ReadAllBytes(manifest.Path);
        var end = Array.LastIndexOf(bytes, (byte)'\n') + 1;
        if (end < bytes.Length)
        {
            using var stream = new FileStream(manifest.Path, FileMode.Open, FileAccess.Write);
            stream.SetLength(end); // the last record was cut short by a kill: drop it, its picture is made again
        }
        var lines = Encoding.UTF8.GetString(bytes, 0, end).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        for (var i = 0; i < lines.Length; i++)
        {
            string? file = null;
            try
            {
                file = JsonNode.Parse(lines[i])?["file"]?.GetValue<string>();
            }
            catch (Exception e) when (e is JsonException or InvalidOperationException)
            {
            }
            if (file is null) throw new InvalidDataException($"{manifest.Path} line {i + 1} is not a manifest record (no \"file\"); move the file away to start its records afresh.");
            manifest._recorded.Add(file);
        }
        return manifest;
    }

    /// <summary>Whether a record for <paramref name="file"/> is there.</summary>
    public bool Has(string file) => _recorded.Contains(file);

    /// <summary>Appends <paramref name="record"/> (which names its "file") as one line, flushed to disk, unless that file has one.</summary>
    public void Append(string file, JsonObject record)
    {
        if (!_recorded.Add(file)) return;
        var line = Encoding.UTF8.GetBytes(record.ToJsonString(Format) + "\n");
        using var stream = new FileStream(Path, FileMode.Append, FileAccess.Write);
        stream.Write(line);
        stream.Flush(flushToDisk: true);
    }
}
