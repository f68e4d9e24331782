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
    [Fact]
    public void Written_inputs_are_bound_again_before_the_next_run_and_nothing_else_is()
    {
        var path = Path.Combine(TestPaths.ModelsDir, "test", "tiny", "unet", "model.onnx");
        using var unet = OnnxComponent.Load("unet", path, new SessionFactory(ExecutionDevice.Parse("cpu"), 1, 1));
        using var lease = unet.Use();
        const int h = 8, w = 8, length = 77, width = 32;
        using var sample = HostTensor.Create(TensorElementType.Float, [1, 4, h, w], "sample");
        using var timestep = HostTensor.Create(TensorElementType.Int64, [1], "timestep");
        using var output = HostTensor.Create(TensorElementType.Float, [1, 4, h, w], "out_sample");
        var hiddenValues = Noise(length * width, 1);
        using var hidden = OrtValue.CreateTensorValueFromMemory(hiddenValues, [1, length, width]);
        using var binding = new StepBinding(unet, rebindWritten: true);
        binding.BindInput("sample", sample);
        binding.BindInput("timestep", timestep);
        binding.BindConstant("encoder_hidden_states", hidden);
        binding.BindOutput("out_sample", output.Value);
        using var runOptions = new RunOptions();

        sample.Write(Noise(4 * h * w, 2));
        timestep.Fill(999);
        binding.Run(runOptions);
        Assert.Equal(2, binding.LastRebound); // both written after their bind
        binding.Run(runOptions);
        Assert.Equal(0, binding.LastRebound); // nothing written since

        var latents = Noise(4 * h * w, 3);
        sample.Write(latents);
        binding.Run(runOptions);
        Assert.Equal(1, binding.LastRebound); // only the sample changed
        var bound = new float[4 * h * w];
        output.Read(0, bound);

        // The same call unbound: the bound run read the latents written last, not those of the first run.
        using var plainSample = OrtValue.CreateTensorValueFromMemory(latents, [1, 4, h, w]);
        using var plainTimestep = OrtValue.CreateTensorValueFromMemory(new long[] { 999 }, [1]);
        using var results = unet.Run(runOptions, ["sample", "timestep", "encoder_hidden_states"], [plainSample, plainTimestep, hidden], ["out_sample"]);
        Assert.Equal(results[0].GetTensorDataAsSpan<float>().ToArray(), bound);
    }

    [Fact]
    public void On_the_CPU_nothing_is_bound_again_and_the_run_reads_what_was_written_last()
    {
        var path = Path.Combine(TestPaths.ModelsDir, "test", "tiny", "unet", "model.onnx");
        using var unet = OnnxComponent.Load("unet", path, new SessionFactory(ExecutionDevice.Parse("cpu"), 1, 1));
        using var lease = unet.Use();
        const int h = 8, w = 8, length = 77, width = 32;
        using var sample = HostTensor.Create(TensorElementType.Float, [1, 4, h, w], "sample");
        using var timestep = HostTensor.Create(TensorElementType.Int64, [1], "timestep");
        using var output = HostTensor.Create(TensorElementType.Float, [1, 4, h, w], "out_sample");
        using var hidden = OrtValue.CreateTensorValueFromMemory(Noise(length * width, 1), [1, length, width]);
        using var binding = new StepBinding(unet);
        binding.BindInput("sample", sample);
        binding.BindInput("timestep", timestep);
        binding.BindConstant("encoder_hidden_states", hidden);
        binding.BindOutput("out_sample", output.Value);
        using var runOptions = new RunOptions();
        timestep.Fill(500);
        sample.Write(Noise(4 * h * w, 2));
        binding.Run(runOptions);
        var first = new float[4 * h * w];
        output.Read(0, first);

        sample.Write(Noise(4 * h * w, 3));
        binding.Run(runOptions);
        Assert.Equal(0, binding.LastRebound);
        var second = new float[4 * h * w];
        output.Read(0, second);
        Assert.NotEqual(first, second); // the in-place write was read without a re-bind
    }

    private static float[] Noise(int count, long seed)
    {
        var values = new float[count];
        new TorchGenerator(seed).FillNormal(values);
        return values;
    }
}
