using System.Globalization;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;
using System.Security.Cryptography;
using System.Text;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Onnx;

/// <summary>How a component's session was created with respect to the <see cref="ModelCache"/>.</summary>
public enum ModelCacheStatus
{
    /// <summary>No cache was used (switched off, a provider whose graphs are not cached, or the folder could not be written).</summary>
    NotUsed,
    /// <summary>Loaded from the source and optimised; the optimised graph was stored for the next start.</summary>
    Stored,
    /// <summary>Loaded from the stored optimised graph, without optimising again.</summary>
    Hit,
}

/// <summary>One stored optimised graph.</summary>
/// <param name="Path">Its folder.</param>
/// <param name="Component">The component, e.g. <c>unet</c>.</param>
/// <param name="Source">The model.onnx it was made from.</param>
/// <param name="Bytes">Size on disk.</param>
/// <param name="LastUsed">When it was last stored or loaded (UTC).</param>
public sealed record ModelCacheEntry(string Path, string Component, string Source, long Bytes, DateTime LastUsed);

/// <summary>
/// The optimised-model cache: ONNX Runtime's optimised graph of each component (its
/// <c>SessionOptions.OptimizedModelFilePath</c> output, weights in one external file beside it), stored the first
/// time a model is loaded and loaded with graph optimisations off at later starts, which skips parsing hundreds of
/// files and re-running the optimisers. An entry is keyed by the source files (names, sizes, modification times,
/// a hash of model.onnx's first and last MB), the ONNX Runtime version, the provider and the CPU's instruction
/// sets (ONNX Runtime's "all" level writes layout-specific kernels); a change to any of them makes a new entry.
/// Entries are written under a temporary name and renamed when complete. Each entry's entry.json records every
/// stored file's size, modification time and XxHash128 content hashes; an entry whose files no longer match (see
/// <see cref="CacheFileCheck"/> for what that check costs and misses) or that does not load is deleted and rebuilt,
/// with a note in <c>ModelInfo.DeviceNotes</c>. The cache never writes into a model folder, and
/// <see cref="Clear"/> deletes only folders that carry its marker (<see cref="ModelCacheRecords"/>).
/// </summary>
public sealed class ModelCache
{
    /// <summary>Environment variable that sets the cache folder when <see cref="PipelineOptions.CacheDirectory"/> is not given.</summary>
    public const string EnvironmentVariable = "LOCALDIFFUSION_CACHE";

    internal const string ModelFileName = "model.onnx";
    internal const string TensorRtFolderName = "tensorrt";
    internal const string DataFileName = "model.onnx.data";
    internal const string StagingMarker = ".tmp-";
    private const string EntryFileName = ModelCacheRecords.EntryFileName;
    private const int FormatVersion = ModelCacheRecords.Format;
    private const int HashedBytes = 1 << 20;

    // ONNX Runtime's session config keys (onnxruntime_session_options_config_keys.h): the optimised model's
    // initializers go to one external file beside it, so graphs over protobuf's 2 GB limit can be written.
    private const string ExternalInitializersFileKey = "session.optimized_model_external_initializers_file_name";
    private const string ExternalInitializersMinSizeKey = "session.optimized_model_external_initializers_min_size_in_bytes";

    /// <summary>A cache in <paramref name="directory"/> (created when the first entry is stored).</summary>
    public ModelCache(string directory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        Directory = System.IO.Path.GetFullPath(directory);
    }

    /// <summary>The cache folder.</summary>
    public string Directory { get; }

    /// <summary>
    /// <c>$LOCALDIFFUSION_CACHE</c> when set; else <c>$XDG_CACHE_HOME/localdiffusion</c> (or <c>~/.cache/localdiffusion</c>)
    /// on Linux, and the user's local application data folder's <c>LocalDiffusion/cache</c> elsewhere.
    /// </summary>
    public static string DefaultDirectory
    {
        get
        {
            if (Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } fromEnvironment)
                return fromEnvironment;
            if (OperatingSystem.IsLinux() || OperatingSystem.IsFreeBSD())
            {
                var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
                var root = xdg is { Length: > 0 } ? xdg : System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
                return System.IO.Path.Combine(root, "localdiffusion");
            }
            return System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.LocalApplicationData), "LocalDiffusion", "cache");
        }
    }

    /// <summary>The stored entries, most recently used first (partial ones being written are not listed).</summary>
    public IReadOnlyList<ModelCacheEntry> List()
    {
        if (!System.IO.Directory.Exists(Directory)) return [];
        var entries = new List<ModelCacheEntry>();
        foreach (var folder in System.IO.Directory.EnumerateDirectories(Directory))
        {
            if (ReadEntry(folder) is not { } entry) continue; // not an entry of this version (Clear says which)
            var bytes = System.IO.Directory.EnumerateFiles(folder).Sum(f => new FileInfo(f).Length);
            entries.Add(new ModelCacheEntry(folder, entry.Component, entry.Source, bytes,
                File.GetLastWriteTimeUtc(System.IO.Path.Combine(folder, EntryFileName))));
        }
        return entries.OrderByDescending(e => e.LastUsed).ToList();
    }

    /// <summary>
    /// Deletes what the cache wrote here — entries, staging folders of unfinished entries, TensorRT engine folders —
    /// recognised by their markers, and entries of older versions by their exact layout; leaves every other folder
    /// alone and says why in <see cref="ModelCacheClearResult.LeftAlone"/>.
    /// </summary>
    public ModelCacheClearResult Clear() => ModelCacheClearing.Clear(Directory);

    /// <summary>The entry <paramref name="modelPath"/> has on <paramref name="device"/>, whether stored yet or not.</summary>
    internal Slot SlotFor(string modelPath, ExecutionDevice device, string? rewrite = null)
    {
        var source = System.IO.Path.GetFullPath(modelPath);
        var component = System.IO.Path.GetFileName(System.IO.Path.GetDirectoryName(source)) is { Length: > 0 } c ? c : "model";
        var key = Key(source, component, device, rewrite);
        return new Slot(source, component, key, System.IO.Path.Combine(Directory, FolderName(component, key)));
    }

    /// <summary>The folder name of the entry with <paramref name="key"/> for <paramref name="component"/>.</summary>
    internal static string FolderName(string component, string key) => $"{Sanitize(component)}-{key}";

    /// <summary>
    /// The TensorRT engine folder for <paramref name="modelPath"/> on <paramref name="device"/> under
    /// <paramref name="cacheDirectory"/>, created with its marker (so <see cref="Clear"/> knows it for the cache's own).
    /// </summary>
    internal static string TensorRtFolder(string cacheDirectory, string modelPath, ExecutionDevice device)
    {
        var name = EntryName(modelPath, device);
        var folder = System.IO.Path.Combine(cacheDirectory, TensorRtFolderName, name);
        System.IO.Directory.CreateDirectory(folder);
        var marker = System.IO.Path.Combine(folder, ModelCacheRecords.TensorRtFileName);
        if (!File.Exists(marker)) ModelCacheRecords.Write(marker, new FolderMarker(ModelCacheRecords.Tag, FormatVersion, name));
        return folder;
    }

    /// <summary>The folder name an entry for <paramref name="modelPath"/> on <paramref name="device"/> has (also used for TensorRT's engine folders).</summary>
    internal static string EntryName(string modelPath, ExecutionDevice device)
    {
        var source = System.IO.Path.GetFullPath(modelPath);
        var component = System.IO.Path.GetFileName(System.IO.Path.GetDirectoryName(source)) is { Length: > 0 } c ? c : "model";
        return FolderName(component, Key(source, component, device));
    }

    /// <summary>Options that make a session write its optimised graph into <paramref name="staging"/>.</summary>
    internal static void WriteOptimisedTo(SessionOptions options, string staging)
    {
        options.OptimizedModelFilePath = System.IO.Path.Combine(staging, ModelFileName);
        // ONNX Runtime warns on every store that an "all"-level graph is only for the machine that made it: the
        // key holds the CPU's instruction sets for that reason, so the warning would only alarm the user.
        options.LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR;
        options.AddSessionConfigEntry(ExternalInitializersFileKey, DataFileName);
        options.AddSessionConfigEntry(ExternalInitializersMinSizeKey, "1024");
    }

    private static string Key(string source, string component, ExecutionDevice device, string? rewrite = null)
    {
        var text = new StringBuilder();
        // A graph rewritten by the engine before optimising (attention fusion) is another graph.
        if (rewrite is not null) text.AppendLine(CultureInfo.InvariantCulture, $"rewrite {rewrite}");
        text.AppendLine(CultureInfo.InvariantCulture, $"format {FormatVersion}");
        text.AppendLine(CultureInfo.InvariantCulture, $"onnxruntime {OrtEnv.Instance().GetVersionString()}");
        text.AppendLine(CultureInfo.InvariantCulture, $"provider {device.ProviderName} {device.DeviceId} level all");
        text.AppendLine(CultureInfo.InvariantCulture, $"cpu {CpuFeatures()}");
        text.AppendLine(CultureInfo.InvariantCulture, $"component {component}");
        // The model and its external data files: every file beside it (exporters write them there).
        foreach (var file in System.IO.Directory.EnumerateFiles(System.IO.Path.GetDirectoryName(source)!).Order(StringComparer.Ordinal))
        {
            var info = new FileInfo(file);
            text.AppendLine(CultureInfo.InvariantCulture, $"file {info.Name} {info.Length} {info.LastWriteTimeUtc.Ticks}");
        }
        using (var stream = File.OpenRead(source))
        {
            var head = new byte[(int)Math.Min(HashedBytes, stream.Length)];
            stream.ReadExactly(head);
            text.AppendLine(Convert.ToHexString(SHA256.HashData(head)));
            var tailLength = (int)Math.Min(HashedBytes, stream.Length);
            stream.Seek(-tailLength, SeekOrigin.End);
            var tail = new byte[tailLength];
            stream.ReadExactly(tail);
            text.AppendLine(Convert.ToHexString(SHA256.HashData(tail)));
        }
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())))[..20].ToLowerInvariant();
    }

    private static string CpuFeatures() => string.Join(",",
        RuntimeInformation.ProcessArchitecture.ToString(),
        $"avx2={Avx2.IsSupported}", $"fma={Fma.IsSupported}", $"avx512f={Avx512F.IsSupported}", $"avx512bw={Avx512BW.IsSupported}",
        $"avxvnni={AvxVnni.IsSupported}", $"avx512vbmi={Avx512Vbmi.IsSupported}", $"advsimd={AdvSimd.IsSupported}", $"dp={Dp.IsSupported}");

    private static string Sanitize(string name) => new(name.Select(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' ? c : '_').ToArray());

    // The folder's current record, or null (absent, unreadable, another format, or not naming this folder).
    private static EntryRecord? ReadEntry(string folder) =>
        ModelCacheRecords.Read<EntryRecord>(System.IO.Path.Combine(folder, EntryFileName)) is { } entry && entry.Describes(System.IO.Path.GetFileName(folder))
            ? entry
            : null;

    internal static void TryDelete(string folder)
    {
        try
        {
            System.IO.Directory.Delete(folder, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Another process holds it or removed it first: what matters is that it is not used.
        }
    }

    private static readonly AsyncLocal<Action<string>?> StagingHook = new();

    /// <summary>Test seam: called with each staging folder as it is made, for the calling flow only (to make a write fail).</summary>
    internal static Action<string>? StagingCreated
    {
        get => StagingHook.Value;
        set => StagingHook.Value = value;
    }

    /// <summary>One component's entry: look it up, or store it.</summary>
    internal sealed class Slot(string source, string component, string key, string folder)
    {
        /// <summary>The entry's folder.</summary>
        public string Folder => folder;

        /// <summary>The component, e.g. <c>unet</c>.</summary>
        public string Component => component;

        /// <summary>
        /// The stored optimised model when the entry is complete and its files hold what was written (see
        /// <see cref="CacheFileCheck"/>), else null; <paramref name="damage"/> then says what was wrong with an entry that
        /// was there (it is deleted), or is null when there was none.
        /// </summary>
        public string? Find(out string? damage)
        {
            damage = null;
            var marker = System.IO.Path.Combine(folder, EntryFileName);
            if (ReadEntry(folder) is not { } entry)
            {
                // A folder of this name without a current record: an unfinished or foreign-format leftover.
                if (File.Exists(marker)) damage = "its entry.json is unreadable or of another format";
                else if (System.IO.Directory.Exists(folder)) damage = "it has no entry.json";
                if (damage is not null) Discard();
                return null;
            }
            var touched = new Dictionary<string, CacheFileRecord>();
            foreach (var (name, recorded) in entry.Files)
            {
                var path = System.IO.Path.Combine(folder, name);
                var wasTouched = false;
                var problem = recorded is null ? "no record of it" : CacheFileCheck.Verify(path, recorded, out wasTouched);
                if (problem is not null)
                {
                    damage = $"{name}: {problem}";
                    Discard();
                    return null;
                }
                if (wasTouched) touched[name] = recorded! with { Ticks = File.GetLastWriteTimeUtc(path).Ticks };
            }
            if (touched.Count > 0)
            {
                // Same content, new time: record the time so the next open needs no full hash.
                foreach (var (name, record) in touched) entry.Files[name] = record;
                TryWrite(marker, entry);
            }
            return System.IO.Path.Combine(folder, ModelFileName);
        }

        /// <summary>Marks the entry as used now (for <see cref="List"/>).</summary>
        public void Touch()
        {
            try
            {
                File.SetLastWriteTimeUtc(System.IO.Path.Combine(folder, EntryFileName), DateTime.UtcNow);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }

        /// <summary>Deletes the entry (it did not load, or its files are not what was written).</summary>
        public void Discard() => TryDelete(folder);

        /// <summary>A fresh folder for ONNX Runtime to write the optimised model into, or null when the cache folder cannot be written.</summary>
        public string? BeginStore()
        {
            try
            {
                var staging = folder + StagingMarker + Guid.NewGuid().ToString("N")[..8];
                System.IO.Directory.CreateDirectory(staging);
                // The marker lets Clear remove a staging folder a crashed loader left behind, and nothing else.
                ModelCacheRecords.Write(System.IO.Path.Combine(staging, ModelCacheRecords.StagingFileName),
                    new FolderMarker(ModelCacheRecords.Tag, FormatVersion, System.IO.Path.GetFileName(folder)));
                StagingCreated?.Invoke(staging);
                return staging;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return null;
            }
        }

        /// <summary>
        /// Records what ONNX Runtime wrote into <paramref name="staging"/> (sizes, times, content hashes) and renames it
        /// to the entry's folder; false when that failed (the staging folder is removed either way, and a concurrent
        /// loader's entry is kept).
        /// </summary>
        public bool Commit(string staging, ExecutionDevice device)
        {
            try
            {
                if (!File.Exists(System.IO.Path.Combine(staging, ModelFileName))) return false;
                File.Delete(System.IO.Path.Combine(staging, ModelCacheRecords.StagingFileName));
                var files = System.IO.Directory.EnumerateFiles(staging).ToDictionary(f => System.IO.Path.GetFileName(f), CacheFileCheck.Record);
                var record = new EntryRecord(ModelCacheRecords.Tag, FormatVersion, key, component, source, OrtEnv.Instance().GetVersionString(), device.ToString(), files);
                ModelCacheRecords.Write(System.IO.Path.Combine(staging, EntryFileName), record);
                if (System.IO.Directory.Exists(folder))
                {
                    if (Find(out _) is not null) return true; // another loader stored the same entry first
                    TryDelete(folder);
                }
                System.IO.Directory.Move(staging, folder);
                return true;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return false;
            }
            finally
            {
                if (System.IO.Directory.Exists(staging)) TryDelete(staging);
            }
        }

        /// <summary>Removes a staging folder that was not committed.</summary>
        public static void Abandon(string staging) => TryDelete(staging);

        private static void TryWrite(string path, EntryRecord entry)
        {
            try
            {
                ModelCacheRecords.Write(path, entry);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Read-only cache: the full hash simply runs again next time.
            }
        }
    }
}
