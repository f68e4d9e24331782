namespace LocalDiffusion.Schedulers;

/// <summary>A copy of the latents a scheduler keeps across steps, in one buffer reused for every copy.</summary>
internal sealed class SampleCopy
{
    private float[] _buffer = [];

    /// <summary>Copies <paramref name="sample"/> into the buffer (resized only when the length changes) and returns it.</summary>
    public float[] Keep(ReadOnlySpan<float> sample)
    {
        if (_buffer.Length != sample.Length) _buffer = new float[sample.Length];
        sample.CopyTo(_buffer);
        return _buffer;
    }
}
