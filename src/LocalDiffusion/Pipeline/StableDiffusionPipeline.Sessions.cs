using LocalDiffusion.Onnx;

namespace LocalDiffusion.Pipeline;

// Which sessions are open (for LowMemory's tests), and the text encoders' sessions held over prompt encoding.
public sealed partial class StableDiffusionPipeline
{
    /// <summary>The components whose sessions are open now, by folder name (for tests of <see cref="PipelineOptions.LowMemory"/>).</summary>
    internal IReadOnlyList<string> OpenSessions()
    {
        var open = new List<string>();
        if (_family is not null) return [.. _family.Model.Components.Where(c => c.IsLoaded).Select(c => c.Name)];
        if (_textEncoder.IsLoaded) open.Add(_folder.IsRefiner ? "text_encoder_2" : "text_encoder");
        if (_textEncoder2?.IsLoaded == true) open.Add("text_encoder_2");
        if (_unet.IsLoaded) open.Add("unet");
        if (_vae.Decoder.IsLoaded) open.Add("vae_decoder");
        if (_vae.Float32Fallback?.IsLoaded == true) open.Add("vae_decoder_fp32");
        if (_previewDecoder?.IsLoaded == true) open.Add(PreviewComponent);
        if (_vaeEncoder is { IsValueCreated: true, Value.IsLoaded: true }) open.Add("vae_encoder");
        return open;
    }

    // The prompt encoders' sessions, held while a generation (or a batch of them) encodes its prompts.
    private TextEncoderLeases UseTextEncoders() => new(_textEncoder.Use(), _textEncoder2?.Use());

    private readonly struct TextEncoderLeases(OnnxComponent.Lease first, OnnxComponent.Lease? second) : IDisposable
    {
        public void Dispose()
        {
            second?.Dispose();
            first.Dispose();
        }
    }
}
