using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Onnx;

/// <summary>One ONNX model of the pipeline (text encoder, UNet, VAE): its session and declared inputs/outputs.</summary>
internal sealed class OnnxComponent : IDisposable
{
    private const string LfsPointerPrefix = "version https://git-lfs";

    private OnnxComponent(string name, string path, InferenceSession session, ModelCacheStatus cacheStatus)
    {
        CacheStatus = cacheStatus;
        Name = name;
        FilePath = path;
        Session = session;
        Inputs = session.InputMetadata.ToDictionary(kv => kv.Key, kv => TensorSpec.FromMetadata(kv.Key, kv.Value));
        Outputs = session.OutputMetadata.ToDictionary(kv => kv.Key, kv => TensorSpec.FromMetadata(kv.Key, kv.Value));
    }

    /// <summary>Component name as in the model folder, e.g. <c>unet</c>.</summary>
    public string Name { get; }

    /// <summary>The model.onnx path.</summary>
    public string FilePath { get; }

    public InferenceSession Session { get; }

    /// <summary>Whether the session came from the optimised-model cache.</summary>
    public ModelCacheStatus CacheStatus { get; }

    public IReadOnlyDictionary<string, TensorSpec> Inputs { get; }

    public IReadOnlyDictionary<string, TensorSpec> Outputs { get; }

    /// <summary>Opens <paramref name="path"/>, turning every way it can be wrong into an error that names the file.</summary>
    public static OnnxComponent Load(string name, string path, SessionFactory sessions)
    {
        CheckModelFile(path);
        InferenceSession session;
        ModelCacheStatus cacheStatus;
        try
        {
            session = sessions.Create(path, out cacheStatus);
        }
        catch (OnnxRuntimeException e)
        {
            throw new ModelLoadException(path, $"ONNX Runtime cannot load this {name} model: {e.Message.Trim()}", e);
        }
        return new OnnxComponent(name, path, session, cacheStatus);
    }

    /// <summary>The declared input <paramref name="name"/>, or an error listing what the model has.</summary>
    public TensorSpec Input(string name) => Inputs.TryGetValue(name, out var spec)
        ? spec
        : throw new ModelLoadException(FilePath, $"{Name} has no input '{name}'; its inputs are {DescribeAll(Inputs)}.");

    /// <summary>The output called <paramref name="preferred"/>, else the first output (exporters differ in naming).</summary>
    public TensorSpec OutputOrFirst(string preferred) =>
        Outputs.TryGetValue(preferred, out var spec) ? spec : Outputs.Values.First();

    public string DescribeInputs() => DescribeAll(Inputs);

    public string DescribeOutputs() => DescribeAll(Outputs);

    public void Dispose() => Session.Dispose();

    private static string DescribeAll(IReadOnlyDictionary<string, TensorSpec> specs) =>
        string.Join(", ", specs.Values.Select(s => $"{s.Name} {s.Describe()}"));

    private static void CheckModelFile(string path)
    {
        if (!File.Exists(path))
            throw new ModelLoadException(path, "file not found: an ONNX model was expected here.");
        var length = new FileInfo(path).Length;
        if (length == 0)
            throw new ModelLoadException(path, "the file is empty: an ONNX model was expected.");
        if (length < 1024)
        {
            var head = File.ReadAllText(path);
            if (head.StartsWith(LfsPointerPrefix, StringComparison.Ordinal))
                throw new ModelLoadException(path,
                    "this is a Git LFS pointer, not the model: fetch the real file (git lfs install && git lfs pull) and try again.");
        }
    }
}
