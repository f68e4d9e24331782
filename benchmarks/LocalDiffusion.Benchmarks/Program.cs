using BenchmarkDotNet.Running;

namespace LocalDiffusion.Benchmarks;

/// <summary>Runs the benchmarks chosen on the command line (e.g. <c>--filter '*'</c>); see benchmarks/README.md.</summary>
public static class Program
{
    /// <summary>Hands the arguments to BenchmarkDotNet's switcher.</summary>
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
