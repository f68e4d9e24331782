using BenchmarkDotNet.Attributes;
using LocalDiffusion.Randomness;

namespace LocalDiffusion.Benchmarks;

/// <summary>torch.randn-compatible initial noise for one 512×512 SD image: 4×64×64 floats.</summary>
[MemoryDiagnoser]
public class TorchGeneratorBenchmarks
{
    private readonly float[] _latents = new float[4 * 64 * 64];

    /// <summary>Which of torch's normal kernels is reproduced.</summary>
    [Params(TorchCpuKernel.Avx2, TorchCpuKernel.Default)]
    public TorchCpuKernel Kernel { get; set; }

    /// <summary>Seeds a generator and fills the latents, as each generation does.</summary>
    [Benchmark]
    public float FillNormal()
    {
        new TorchGenerator(42, Kernel).FillNormal(_latents);
        return _latents[^1];
    }
}
