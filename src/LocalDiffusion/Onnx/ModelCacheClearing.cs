using System.Text.Json;
using System.Text.RegularExpressions;

namespace LocalDiffusion.Onnx;

/// <summary>A folder in the cache folder that <see cref="ModelCache.Clear"/> did not delete, and why.</summary>
/// <param name="Path">The folder.</param>
/// <param name="Reason">Why it was not recognised as something the cache wrote.</param>
public sealed record ModelCacheLeftAlone(string Path, string Reason);

/// <summary>What <see cref="ModelCache.Clear"/> deleted and what it left alone.</summary>
public sealed record ModelCacheClearResult
{
    /// <summary>The entries deleted (the optimised graphs), those of older versions included.</summary>
    public IReadOnlyList<string> Entries { get; init; } = [];

    /// <summary>How many of <see cref="Entries"/> were written by an older version (recognised by their exact layout).</summary>
    public int OlderEntries { get; init; }

    /// <summary>Staging folders of entries never finished (a loader stopped while writing) that were deleted.</summary>
    public IReadOnlyList<string> Unfinished { get; init; } = [];

    /// <summary>TensorRT engine folders deleted.</summary>
    public IReadOnlyList<string> TensorRtEngines { get; init; } = [];

    /// <summary>Bytes freed.</summary>
    public long BytesFreed { get; init; }

    /// <summary>The folders left alone, each with the reason.</summary>
    public IReadOnlyList<ModelCacheLeftAlone> LeftAlone { get; init; } = [];
}

/// <summary>
/// <see cref="ModelCache.Clear"/>: deletes only folders the cache can show it wrote. An entry carries entry.json with
/// the cache's tag and its own key, which must name the folder, and the folder holds exactly the files entry.json
/// lists; a staging folder carries staging.json naming its entry; a TensorRT engine folder carries tensorrt-entry.json
/// naming itself. Entries of the older format (entry.json without tag or hashes) are recognised by that exact layout:
/// the folder named component-key (20 hex digits), entry.json with exactly the old fields, and exactly the listed files
/// at the listed sizes. Older staging and TensorRT folders carry no marker and are left alone, reported.
/// </summary>
internal static partial class ModelCacheClearing
{
    [GeneratedRegex("^[A-Za-z0-9_-]+-[0-9a-f]{20}$")]
    private static partial Regex EntryName();

    [GeneratedRegex(@"^(?<entry>[A-Za-z0-9_-]+-[0-9a-f]{20})\.tmp-[0-9a-f]{8}$")]
    private static partial Regex StagingName();

    // What ONNX Runtime and the cache write into a staging folder.
    private static readonly string[] StagingFiles =
        [ModelCache.ModelFileName, ModelCache.DataFileName, ModelCacheRecords.EntryFileName, ModelCacheRecords.StagingFileName];

    private static readonly string[] OldEntryFields = ["Format", "Component", "Source", "OnnxRuntime", "Provider", "Files"];

    public static ModelCacheClearResult Clear(string directory)
    {
        if (!Directory.Exists(directory)) return new ModelCacheClearResult();
        List<string> entries = [], unfinished = [], engines = [];
        List<ModelCacheLeftAlone> leftAlone = [];
        var older = 0;
        long freed = 0;

        void Delete(string folder, List<string> into)
        {
            var bytes = Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
            ModelCache.TryDelete(folder);
            if (Directory.Exists(folder))
            {
                leftAlone.Add(new ModelCacheLeftAlone(folder, "could not be deleted (in use, or no permission)"));
                return;
            }
            freed += bytes;
            into.Add(folder);
        }

        foreach (var folder in Directory.EnumerateDirectories(directory).Order(StringComparer.Ordinal))
        {
            var name = Path.GetFileName(folder);
            if (name == ModelCache.TensorRtFolderName)
            {
                foreach (var engine in Directory.EnumerateDirectories(folder).Order(StringComparer.Ordinal))
                {
                    if (WhyNotAnEngineFolder(engine) is { } reason) leftAlone.Add(new ModelCacheLeftAlone(engine, reason));
                    else Delete(engine, engines);
                }
                // The tensorrt folder itself goes only when nothing else is in it.
                if (!Directory.EnumerateFileSystemEntries(folder).Any()) ModelCache.TryDelete(folder);
                continue;
            }
            if (name.Contains(ModelCache.StagingMarker, StringComparison.Ordinal))
            {
                if (WhyNotStaging(folder) is { } reason) leftAlone.Add(new ModelCacheLeftAlone(folder, reason));
                else Delete(folder, unfinished);
                continue;
            }
            var why = WhyNotAnEntry(folder, out var old);
            if (why is not null)
            {
                leftAlone.Add(new ModelCacheLeftAlone(folder, why));
                continue;
            }
            var before = entries.Count;
            Delete(folder, entries);
            if (old && entries.Count > before) older++;
        }
        return new ModelCacheClearResult
        {
            Entries = entries, OlderEntries = older, Unfinished = unfinished, TensorRtEngines = engines, BytesFreed = freed, LeftAlone = leftAlone,
        };
    }

    // Null when the folder is an entry (current, or the older format's exact layout), else why not.
    private static string? WhyNotAnEntry(string folder, out bool old)
    {
        old = false;
        var name = Path.GetFileName(folder);
        var marker = Path.Combine(folder, ModelCacheRecords.EntryFileName);
        if (!File.Exists(marker)) return "no entry.json: not a cache entry";
        if (Directory.EnumerateDirectories(folder).Any()) return "holds subfolders, which a cache entry never has";
        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(marker));
            root = document.RootElement.Clone();
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            return "its entry.json is not readable JSON: not one the cache wrote";
        }
        if (root.ValueKind != JsonValueKind.Object) return "its entry.json is not a JSON object: not one the cache wrote";

        Dictionary<string, long> sizes;
        if (root.TryGetProperty("Tag", out var tag))
        {
            if (tag.ValueKind != JsonValueKind.String || tag.GetString() != ModelCacheRecords.Tag)
                return $"its entry.json's tag is not \"{ModelCacheRecords.Tag}\"";
            var entry = ModelCacheRecords.Read<EntryRecord>(marker);
            if (entry is null || entry.Format != ModelCacheRecords.Format || entry.Files is null || entry.Component is null || entry.Key is null)
                return $"its entry.json is not of format {ModelCacheRecords.Format} (written by another version?)";
            if (!entry.Describes(name))
                return $"its entry.json is for the folder \"{ModelCache.FolderName(entry.Component, entry.Key)}\", not this one";
            sizes = entry.Files.Where(f => f.Value is not null).ToDictionary(f => f.Key, f => f.Value.Bytes);
            // A damaged entry (a file truncated or missing) is still the cache's own: only foreign files make it not so.
            return ForeignFiles(folder, sizes.Keys, checkSizes: null);
        }

        // The older format: no tag, so the layout must match exactly.
        if (!EntryName().IsMatch(name)) return "its entry.json has no cache tag and the folder is not named component-key";
        var fields = root.EnumerateObject().Select(p => p.Name).ToList();
        if (!fields.Order(StringComparer.Ordinal).SequenceEqual(OldEntryFields.Order(StringComparer.Ordinal)))
            return "its entry.json has no cache tag and not exactly the fields of an older cache entry";
        if (root.GetProperty("Format") is not { ValueKind: JsonValueKind.Number } format || !format.TryGetInt32(out var f1) || f1 != 1
            || root.GetProperty("Component") is not { ValueKind: JsonValueKind.String } component
            || !name.StartsWith(new string(component.GetString()!.Select(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' ? c : '_').ToArray()) + "-", StringComparison.Ordinal)
            || root.GetProperty("Files") is not { ValueKind: JsonValueKind.Object } files)
            return "its entry.json has no cache tag and does not match an older cache entry (format 1, its component naming the folder)";
        sizes = [];
        foreach (var file in files.EnumerateObject())
        {
            if (file.Value.ValueKind != JsonValueKind.Number || !file.Value.TryGetInt64(out var size)) return "its entry.json lists a file without a size";
            sizes[file.Name] = size;
        }
        if (ForeignFiles(folder, sizes.Keys, sizes) is { } foreign) return foreign;
        old = true;
        return null;
    }

    // Null when the folder holds only the listed files (and entry.json), at the listed sizes when given.
    private static string? ForeignFiles(string folder, IEnumerable<string> listed, Dictionary<string, long>? checkSizes)
    {
        var expected = new HashSet<string>(listed, StringComparer.Ordinal) { ModelCacheRecords.EntryFileName };
        var extra = Directory.EnumerateFiles(folder).Select(Path.GetFileName).Where(n => !expected.Contains(n!)).ToList();
        if (extra.Count > 0)
            return $"holds files its entry.json does not list ({string.Join(", ", extra.Take(3))}{(extra.Count > 3 ? ", …" : "")}): not only what the cache wrote";
        if (checkSizes is not null)
            foreach (var (file, size) in checkSizes)
            {
                var info = new FileInfo(Path.Combine(folder, file));
                if (!info.Exists || info.Length != size)
                    return $"its files do not match its entry.json ({file}: {(info.Exists ? $"{info.Length} bytes, {size} listed" : "missing")})";
            }
        return null;
    }

    private static string? WhyNotStaging(string folder)
    {
        var match = StagingName().Match(Path.GetFileName(folder));
        if (!match.Success) return "named like a staging folder (\".tmp-\") but not entry.tmp-xxxxxxxx: not one the cache made";
        var marker = ModelCacheRecords.Read<FolderMarker>(Path.Combine(folder, ModelCacheRecords.StagingFileName));
        if (marker is null || marker.Tag != ModelCacheRecords.Tag)
            return "no staging.json marker: not made by this version of the cache (an older version's leftover can be deleted by hand)";
        if (marker.Entry != match.Groups["entry"].Value) return $"its staging.json is for \"{marker.Entry}\", not this folder";
        if (Directory.EnumerateDirectories(folder).Any()) return "holds subfolders, which a staging folder never has";
        var extra = Directory.EnumerateFiles(folder).Select(Path.GetFileName).Where(n => !StagingFiles.Contains(n)).ToList();
        return extra.Count > 0 ? $"holds files the cache does not write ({string.Join(", ", extra.Take(3))})" : null;
    }

    private static string? WhyNotAnEngineFolder(string folder)
    {
        var name = Path.GetFileName(folder);
        var marker = ModelCacheRecords.Read<FolderMarker>(Path.Combine(folder, ModelCacheRecords.TensorRtFileName));
        if (marker is null || marker.Tag != ModelCacheRecords.Tag)
            return "no tensorrt-entry.json marker: not made by this version of the cache (an older version's engines can be deleted by hand)";
        return marker.Entry == name && EntryName().IsMatch(name) ? null : $"its tensorrt-entry.json is for \"{marker.Entry}\", not this folder";
    }
}
