using LocalDiffusion.Randomness;

namespace LocalDiffusion.Schedulers;

/// <summary>The fresh noise z ~ N(0, I) a stochastic step adds, drawn into one reused latent-sized buffer.</summary>
internal sealed class NoiseBuffer
{
    private readonly ScratchBuffer _buffer = new();

    /// <summary><paramref name="length"/> standard normals from <paramref name="generator"/>, valid until the next draw.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="generator"/> is null.</exception>
    public Span<float> Draw(TorchGenerator generator, int length)
    {
        ArgumentNullException.ThrowIfNull(generator);
        var noise = _buffer.Get(length);
        generator.FillNormal(noise);
        return noise;
    }
}
