namespace LocalDiffusion.Onnx;

/// <summary>
/// A component whose session is created the first time it is needed, once, even when several generations ask at
/// the same moment: e.g. the VAE encoder, which text-to-image never uses, so a txt2img run neither waits for nor
/// holds its weights. A load error surfaces at that first use (and again at every later one).
/// </summary>
internal sealed class LazyComponent(string name, string path, SessionFactory sessions) : IDisposable
{
    private readonly Lazy<OnnxComponent> _component = new(() => OnnxComponent.Load(name, path, sessions), LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The component name, e.g. <c>vae_encoder</c>.</summary>
    public string Name => name;

    /// <summary>Its model.onnx.</summary>
    public string FilePath => path;

    /// <summary>Whether the session has been created.</summary>
    public bool IsLoaded => _component.IsValueCreated;

    /// <summary>The component, loading it on first use.</summary>
    /// <exception cref="ModelLoadException">The model file is missing or bad (names the file).</exception>
    public OnnxComponent Value => _component.Value;

    /// <summary>Releases the session if it was created.</summary>
    public void Dispose()
    {
        if (_component.IsValueCreated) _component.Value.Dispose();
    }
}
