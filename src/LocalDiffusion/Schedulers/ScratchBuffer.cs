namespace LocalDiffusion.Schedulers;

/// <summary>A reusable float buffer sized to the latents, so a step allocates nothing after the first.</summary>
internal sealed class ScratchBuffer
{
    private float[] _buffer = [];

    /// <summary>A buffer of exactly <paramref name="length"/> elements (contents unspecified).</summary>
    public Span<float> Get(int length)
    {
        if (_buffer.Length != length)
            _buffer = new float[length];
        return _buffer;
    }
}
