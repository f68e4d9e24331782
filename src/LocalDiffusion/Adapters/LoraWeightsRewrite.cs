using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using LocalDiffusion.Onnx.Rewriting;
using Microsoft.ML.OnnxRuntime;
using static LocalDiffusion.Onnx.Rewriting.OnnxFields;

namespace LocalDiffusion.Adapters;

/// <summary>
/// The alternative to <see cref="InitializerOverrides"/> that issue #19 asked to measure, used only by
/// <c>localdiffusion bench lora --variant rewrite</c> (through <see cref="Current"/>): the merged
/// weights written once as a weights-only rewrite of the optimised-model cache's graph — a data file holding only the
/// changed tensors and a copy of the graph whose changed initializers point at it (the rest still at the cache's data
/// file, beside it in the entry's folder, as external-data locations are relative to the model's folder) — and the
/// session opened from that file with nothing handed over. A set rewritten before opens without merging again. Without
/// <see cref="Rewrite"/> it only times the override path's session opening, so both variants report the same columns.
/// </summary>
internal sealed class LoraWeightsRewrite : IDisposable
{
    // External data offsets aligned to pages, so that ONNX Runtime may map the tensors rather than read them.
    private const int Alignment = 4096;

    private static readonly AsyncLocal<LoraWeightsRewrite?> InFlow = new();

    /// <summary>
    /// The probe of the calling flow (bench lora sets it around its pipeline; the engine never does, so its LoRA sessions
    /// open as documented on <see cref="InitializerOverrides"/>). A flow value, not an option: the request contract stays
    /// free of adapter types.
    /// </summary>
    public static LoraWeightsRewrite? Current
    {
        get => InFlow.Value;
        set => InFlow.Value = value;
    }

    private readonly Dictionary<(string Model, string Identity), string> _written = [];
    private readonly List<string> _files = [];

    /// <param name="rewrite">True: open the LoRA sessions from weights-only rewrites; false: time the override path.</param>
    public LoraWeightsRewrite(bool rewrite) => Rewrite = rewrite;

    /// <summary>Whether sessions with LoRA weights open from rewritten files (else: with overrides, as the engine does).</summary>
    public bool Rewrite { get; }

    /// <summary>Seconds spent writing the rewrites' data files (flushed to disk) since <see cref="Reset"/>.</summary>
    public double DataSeconds { get; private set; }

    /// <summary>Seconds spent writing the rewrites' graph copies (flushed to disk) since <see cref="Reset"/>.</summary>
    public double GraphSeconds { get; private set; }

    /// <summary>Seconds spent opening the UNet's LoRA sessions (InferenceSession construction) since <see cref="Reset"/>.</summary>
    public double UnetOpenSeconds { get; private set; }

    /// <summary>Bytes written (data files and graph copies) since <see cref="Reset"/>.</summary>
    public long BytesWritten { get; private set; }

    /// <summary>Starts the counters again (one generation each).</summary>
    public void Reset() => (DataSeconds, GraphSeconds, UnetOpenSeconds, BytesWritten) = (0, 0, 0, 0);

    /// <summary>Whether the LoRA set <paramref name="identity"/> was already written for <paramref name="modelPath"/>.</summary>
    public bool Has(string modelPath, string identity) => Rewrite && _written.ContainsKey((Path.GetFullPath(modelPath), identity));

    /// <summary>Times <paramref name="open"/> (the session construction), counted when it opens a UNet.</summary>
    public InferenceSession Timed(string modelPath, Func<InferenceSession> open)
    {
        var clock = Stopwatch.StartNew();
        var session = open();
        if (Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath(modelPath))) == "unet") UnetOpenSeconds += clock.Elapsed.TotalSeconds;
        return session;
    }

    /// <summary>The rewrite of <paramref name="cachedPath"/> for <paramref name="overrides"/>' set, written when not yet.</summary>
    public string PathFor(string modelPath, string cachedPath, InitializerOverrides overrides, CachedConvForm? form)
    {
        var key = (Path.GetFullPath(modelPath), overrides.Identity);
        if (_written.TryGetValue(key, out var known)) return known;
        var name = "lora-" + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(overrides.Identity)))[..16].ToLowerInvariant() + ".onnx";
        var folder = Path.GetDirectoryName(Path.GetFullPath(cachedPath))!;
        var graphPath = Path.Combine(folder, name);
        var dataName = name + ".data";
        _files.Add(graphPath);
        _files.Add(Path.Combine(folder, dataName));

        var clock = Stopwatch.StartNew();
        var placed = new Dictionary<string, (long Offset, long Length)>(StringComparer.Ordinal);
        using (var data = new FileStream(Path.Combine(folder, dataName), FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            void Put(string tensor, ReadOnlySpan<byte> bytes)
            {
                var offset = (data.Position + Alignment - 1) / Alignment * Alignment;
                data.SetLength(offset);
                data.Position = offset;
                data.Write(bytes);
                placed[tensor] = (offset, bytes.Length);
            }
            foreach (var (tensor, _, _) in overrides.Entries)
                if (form is null || !form.Replaces(tensor)) Put(tensor, overrides.RawBytes(tensor));
            if (form is not null)
                foreach (var (tensor, value) in form.Entries) Put(tensor, value.GetTensorMutableRawData());
            data.Flush(flushToDisk: true);
            BytesWritten += data.Length;
        }
        DataSeconds += clock.Elapsed.TotalSeconds;

        clock.Restart();
        var graph = RewriteGraph(File.ReadAllBytes(cachedPath), dataName, placed);
        using (var file = new FileStream(graphPath, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            file.Write(graph);
            file.Flush(flushToDisk: true);
        }
        BytesWritten += graph.Length;
        GraphSeconds += clock.Elapsed.TotalSeconds;
        _written[key] = graphPath;
        return graphPath;
    }

    /// <summary>The rewrite of <paramref name="modelPath"/> already written for <paramref name="identity"/>.</summary>
    public string PathFor(string modelPath, string identity) => _written[(Path.GetFullPath(modelPath), identity)];

    // The model with each placed initializer's data moved to dataName; every other field copied as it was.
    private static byte[] RewriteGraph(ReadOnlyMemory<byte> model, string dataName, Dictionary<string, (long Offset, long Length)> placed)
    {
        var found = 0;
        var writer = new ProtoWriter();
        var reader = new ProtoReader(model);
        while (reader.More)
        {
            var start = reader.Position;
            var (field, wire) = reader.Tag();
            if (field != ModelGraph || wire != ProtoReader.LengthDelimited)
            {
                reader.Skip(wire);
                writer.Raw(reader.Since(start).Span);
                continue;
            }
            var graph = new ProtoReader(reader.ReadBytes());
            writer.Message(ModelGraph, g =>
            {
                while (graph.More)
                {
                    var at = graph.Position;
                    var (f, w) = graph.Tag();
                    if (f == GraphInitializer && w == ProtoReader.LengthDelimited)
                    {
                        var tensor = graph.ReadBytes();
                        var name = OnnxGraph.ReadTensor(tensor).Name;
                        if (placed.TryGetValue(name, out var where))
                        {
                            found++;
                            g.Message(GraphInitializer, t => Relocate(t, tensor, dataName, where));
                            continue;
                        }
                    }
                    else graph.Skip(w);
                    g.Raw(graph.Since(at).Span);
                }
            });
        }
        if (found != placed.Count)
            throw new InvalidDataException($"the cached graph lacks {placed.Count - found} of the {placed.Count} initializers the LoRA set changes");
        return writer.ToArray();
    }

    private static void Relocate(ProtoWriter t, ReadOnlyMemory<byte> tensor, string dataName, (long Offset, long Length) where)
    {
        var reader = new ProtoReader(tensor);
        while (reader.More)
        {
            var start = reader.Position;
            var (field, wire) = reader.Tag();
            reader.Skip(wire);
            if (field is TensorRawData or TensorExternalData or TensorDataLocation) continue;
            t.Raw(reader.Since(start).Span);
        }
        void Entry(string key, string value) => t.Message(TensorExternalData, e =>
        {
            e.String(EntryKey, key);
            e.String(EntryValue, value);
        });
        Entry("location", dataName);
        Entry("offset", where.Offset.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Entry("length", where.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        t.Varint(TensorDataLocation, 1);
    }

    /// <summary>Deletes the rewrites written (each about the size of the set's changed weights).</summary>
    public void Dispose()
    {
        foreach (var file in _files)
            try { File.Delete(file); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        _files.Clear();
        _written.Clear();
    }
}
