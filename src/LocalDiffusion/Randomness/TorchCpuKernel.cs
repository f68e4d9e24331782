namespace LocalDiffusion.Randomness;

/// <summary>
/// Which of PyTorch's CPU normal kernels to reproduce for draws of 16 or more float32 values. Torch picks the kernel
/// by the CPU capability it dispatches to (<c>torch.backends.cpu.get_cpu_capability()</c>, or the
/// <c>ATEN_CPU_CAPABILITY</c> environment variable), and the two give slightly different bits. Draws of fewer than
/// 16 values are the same on both.
/// </summary>
public enum TorchCpuKernel
{
    /// <summary>
    /// normal_fill_AVX2: vectorised Cephes float32 log and sincos. Torch on x86 CPUs with AVX2 and without AVX-512,
    /// or with <c>ATEN_CPU_CAPABILITY=avx2</c>.
    /// </summary>
    Avx2,

    /// <summary>
    /// normal_fill: per-element float32 log, cos and sin of the C math library. Torch's default and AVX-512
    /// capabilities (DistributionTemplates.h selects the vector kernel only for AVX2). Bit-exact where .NET and torch
    /// use the same C math library (glibc on Linux).
    /// </summary>
    Default,
}
