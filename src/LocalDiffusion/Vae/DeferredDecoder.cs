using LocalDiffusion.Onnx;

namespace LocalDiffusion.Vae;

/// <summary>
/// The live previews' own decoder (a TAESD, or another VAE named for previews), opened on the first preview: a model
/// loaded for generations that ask for no previews (the CLI's <c>generate</c>, most server requests) never opens its
/// session. What can be checked without the session (the file, config.json's scaling factor and latent channels) was
/// checked at load; the rest is checked when it opens, before the generation that asked for previews starts its work.
/// </summary>
internal sealed class DeferredDecoder : IDisposable
{
    private readonly Lazy<VaeDecoder> _decoder;
    private readonly TinyDecoderForm? _tiny;

    /// <param name="path">The decoder's model.onnx.</param>
    /// <param name="tiny">What <see cref="TinyDecoderForm.Detect"/> found, when it is a TAESD.</param>
    /// <param name="latentChannels">The channels the model family's latents have.</param>
    /// <param name="open">Opens the decoder's session (under the pipeline's options) and wraps it.</param>
    public DeferredDecoder(string path, TinyDecoderForm? tiny, int latentChannels, Func<VaeDecoder> open)
    {
        VaeDecoder.CheckDeclaredChannels(path, tiny, latentChannels);
        FilePath = path;
        _tiny = tiny;
        _decoder = new Lazy<VaeDecoder>(open, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    /// <summary>The model.onnx path.</summary>
    public string FilePath { get; }

    /// <summary>"TAESD" or "VAE", as <see cref="VaeDecoder.Kind"/> will say.</summary>
    public string Kind => _tiny is null ? "VAE" : "TAESD";

    /// <summary>Whether a preview has opened it.</summary>
    public bool IsOpen => _decoder.IsValueCreated;

    /// <summary>The decoder, its session opened on the first call; errors name the file.</summary>
    public VaeDecoder Open() => _decoder.Value;

    /// <summary>The opened decoder's component, or null while none has been opened.</summary>
    public OnnxComponent? Component => IsOpen ? _decoder.Value.Component : null;

    /// <summary>Wraps a session opened for a deferred decoder, closing it again when the graph is refused.</summary>
    public static VaeDecoder OpenWith(OnnxComponent session, Func<OnnxComponent, VaeDecoder> wrap)
    {
        try
        {
            return wrap(session);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (IsOpen) _decoder.Value.Dispose();
    }
}
