using BenchmarkDotNet.Attributes;
using LocalDiffusion.Randomness;
using LocalDiffusion.Schedulers;

namespace LocalDiffusion.Benchmarks;

/// <summary>
/// The scheduler's own cost per UNet evaluation (ScaleModelInput + Step) on [1,4,64,64] latents, for every
/// registered scheduler: a 20-evaluation loop with a fixed model output, reported per evaluation.
/// </summary>
[MemoryDiagnoser]
public class SchedulerStepBenchmarks
{
    private const int Steps = 20;
    private const int Size = 4 * 64 * 64;
    private readonly float[] _initial = new TorchGenerator(1).Normal(Size);
    private readonly float[] _output = new TorchGenerator(2).Normal(Size);
    private readonly float[] _sample = new float[Size];
    private readonly float[] _input = new float[Size];
    private SchedulerConfig _config = SchedulerConfig.Default;

    /// <summary>Every scheduler id in the default registry.</summary>
    public static IEnumerable<string> Ids => SchedulerRegistry.Default.All.Select(i => i.Id);

    /// <summary>The scheduler measured.</summary>
    [ParamsSource(nameof(Ids))]
    public string Scheduler { get; set; } = "";

    /// <summary>Reads the SD 1.5 scheduler config the test models ship.</summary>
    [GlobalSetup]
    public void Setup() => _config = SchedulerConfig.Load(RepoPaths.Of("models", "test", "tiny", "scheduler", "scheduler_config.json"));

    /// <summary>A fresh scheduler, its timesteps, and one ScaleModelInput + Step per evaluation.</summary>
    [Benchmark(OperationsPerInvoke = Steps)]
    public float ScaleAndStep()
    {
        var scheduler = SchedulerRegistry.Default.Create(Scheduler, _config);
        scheduler.SetTimesteps(Steps);
        var generator = new TorchGenerator(3);
        _initial.CopyTo(_sample, 0);
        for (var i = 0; i < scheduler.Timesteps.Count; i++)
        {
            scheduler.ScaleModelInput(_sample, _input, i);
            scheduler.Step(_output, i, _sample, generator);
        }
        return _sample[0];
    }
}
