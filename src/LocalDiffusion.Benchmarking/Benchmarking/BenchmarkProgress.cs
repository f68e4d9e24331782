namespace LocalDiffusion.Benchmarking;

/// <summary>Progress of a benchmark, in generations; reported as each UNet evaluation ends.</summary>
/// <param name="Completed">Generations done, with a fraction for the one running.</param>
/// <param name="Total">Generations in all (references, then every row × case × repeat).</param>
/// <param name="Current">What is running, e.g. <c>DPM++ 2M, 8 steps</c>.</param>
public sealed record BenchmarkProgress(double Completed, int Total, string Current);
