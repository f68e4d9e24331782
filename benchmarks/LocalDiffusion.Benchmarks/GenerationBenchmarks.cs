using LocalDiffusion.Pipeline;
using BenchmarkDotNet.Attributes;

namespace LocalDiffusion.Benchmarks;

/// <summary>
/// A whole generation on the tiny random-weight test model (64×64, CFG 7.5): the engine's fixed overhead around
/// ONNX Runtime — tokenizing, tensor marshalling, the loop, the scheduler, VAE and RGB conversion.
/// </summary>
[MemoryDiagnoser]
public class GenerationBenchmarks
{
    private StableDiffusionPipeline? _pipeline;

    /// <summary>Denoising steps.</summary>
    [Params(8, 32)]
    public int Steps { get; set; }

    /// <summary>Loads models/test/tiny on the CPU once.</summary>
    [GlobalSetup]
    public void Setup() => _pipeline = StableDiffusionPipeline.Load(RepoPaths.Of("models", "test", "tiny"), new PipelineOptions { Device = "cpu" });

    /// <summary>Releases the sessions.</summary>
    [GlobalCleanup]
    public void Cleanup() => _pipeline?.Dispose();

    /// <summary>Prompt to RGB pixels with Euler.</summary>
    [Benchmark]
    public async Task<int> Generate()
    {
        var result = await _pipeline!.GenerateAsync(new GenerationRequest
        {
            Prompt = "a red circle on a blue background", Seed = 1, Steps = Steps, Width = 64, Height = 64, Scheduler = "euler",
        });
        return result.Images[0].Rgb.Length;
    }
}
