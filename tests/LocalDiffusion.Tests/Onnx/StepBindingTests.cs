using LocalDiffusion.Onnx;
using LocalDiffusion.Randomness;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace LocalDiffusion.Tests.Onnx;

/// <summary>
/// A bound tensor written after its bind must be bound again before the next run: ONNX Runtime copies a host tensor to
/// the device that reads it when it is bound (<c>IOBinding::BindInput</c> → <c>CopyOneInputAcrossDevices</c>; the .NET
/// <c>OrtIoBinding</c> documentation says later changes are not seen unless re-bound), so on a GPU a step would read the
/// first step's latents. The CPU provider reads the host memory in place, so the pictures here cannot show the fault:
/// the first test forces the re-binding on the CPU and checks it, on tiny's real UNet, and that the bound run still
/// equals a plain run; the second checks that on the CPU nothing is bound again and the run still reads the new latents.
/// </summary>
public sealed class StepBindingTests
{
    private const int H = 8, W = 8, Length = 77, Width = 32, Count = 4 * H * W;

    [Fact]
    public void Written_inputs_are_bound_again_before_the_next_run_and_nothing_else_is()
    {
        using var unet = BoundUnet.Open(rebindWritten: true);
        var (binding, sample, timestep) = (unet.Binding, unet.Sample, unet.Timestep);
        using var runOptions = new RunOptions();

        sample.Write(Noise(Count, 2));
        timestep.Fill(999);
        Assert.True(binding.RebindsWritten);
        binding.Run(runOptions);
        Assert.Equal(2, binding.LastWritten); // both written after their bind
        binding.Run(runOptions);
        Assert.Equal(0, binding.LastWritten); // nothing written since

        var latents = Noise(Count, 3);
        sample.Write(latents);
        binding.Run(runOptions);
        Assert.Equal(1, binding.LastWritten); // only the sample changed
        var bound = unet.ReadOutput();

        // The same call unbound: the bound run read the latents written last, not those of the first run.
        using var plainSample = OrtValue.CreateTensorValueFromMemory(latents, [1, 4, H, W]);
        using var plainTimestep = OrtValue.CreateTensorValueFromMemory(new long[] { 999 }, [1]);
        using var results = unet.Model.Run(runOptions, ["sample", "timestep", "encoder_hidden_states"], [plainSample, plainTimestep, unet.Hidden], ["out_sample"]);
        Assert.Equal(results[0].GetTensorDataAsSpan<float>().ToArray(), bound);
    }

    [Fact]
    public void On_the_CPU_nothing_is_bound_again_and_the_run_reads_what_was_written_last()
    {
        using var unet = BoundUnet.Open(rebindWritten: null);
        using var runOptions = new RunOptions();
        unet.Timestep.Fill(500);
        unet.Sample.Write(Noise(Count, 2));
        unet.Binding.Run(runOptions);
        var first = unet.ReadOutput();

        unet.Sample.Write(Noise(Count, 3));
        unet.Binding.Run(runOptions);
        Assert.False(unet.Binding.RebindsWritten);
        Assert.Equal(1, unet.Binding.LastWritten);
        Assert.NotEqual(first, unet.ReadOutput()); // the in-place write was read without a re-bind
    }

    /// <summary>tiny's real UNet on the CPU with its sample, timestep, conditioning and output bound.</summary>
    private sealed class BoundUnet : IDisposable
    {
        private readonly List<IDisposable> _owned = [];

        private BoundUnet(OnnxComponent model, bool? rebindWritten)
        {
            Model = Own(model);
            Own(model.Use());
            Sample = Own(HostTensor.Create(TensorElementType.Float, [1, 4, H, W], "sample"));
            Timestep = Own(HostTensor.Create(TensorElementType.Int64, [1], "timestep"));
            Output = Own(HostTensor.Create(TensorElementType.Float, [1, 4, H, W], "out_sample"));
            Hidden = Own(OrtValue.CreateTensorValueFromMemory(Noise(Length * Width, 1), [1, Length, Width]));
            Binding = Own(rebindWritten is { } rebind ? new StepBinding(model, rebind) : new StepBinding(model));
            Binding.BindInput("sample", Sample);
            Binding.BindInput("timestep", Timestep);
            Binding.BindConstant("encoder_hidden_states", Hidden);
            Binding.BindOutput("out_sample", Output.Value);
        }

        public OnnxComponent Model { get; }
        public HostTensor Sample { get; }
        public HostTensor Timestep { get; }
        public HostTensor Output { get; }
        public OrtValue Hidden { get; }
        public StepBinding Binding { get; }

        /// <summary>Null: the default the session's provider gives (none on the CPU).</summary>
        public static BoundUnet Open(bool? rebindWritten)
        {
            var path = Path.Combine(TestPaths.ModelsDir, "test", "tiny", "unet", "model.onnx");
            return new BoundUnet(OnnxComponent.Load("unet", path, new SessionFactory(ExecutionDevice.Parse("cpu"), 1, 1)), rebindWritten);
        }

        public float[] ReadOutput()
        {
            var values = new float[Count];
            Output.Read(0, values);
            return values;
        }

        private T Own<T>(T value) where T : IDisposable
        {
            _owned.Add(value);
            return value;
        }

        public void Dispose()
        {
            for (var i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
        }
    }

    private static float[] Noise(int count, long seed)
    {
        var values = new float[count];
        new TorchGenerator(seed).FillNormal(values);
        return values;
    }
}
