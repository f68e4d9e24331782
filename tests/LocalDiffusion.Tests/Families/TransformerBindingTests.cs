using LocalDiffusion.Families;
using LocalDiffusion.Onnx;
using LocalDiffusion.Randomness;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Tests.Families;

/// <summary>
/// The transformer families' I/O binding (the GPU path's, run here on the CPU): the first call of a loop runs unbound and
/// binds, the next ones write only the latents and timestep into the bound tensors. Every bound call must give exactly
/// what an unbound call gives for the same inputs — the reference is the plain ONNX Runtime run of tiny-sd3's transformer.
/// </summary>
public sealed class TransformerBindingTests
{
    [Fact]
    public void Bound_calls_give_exactly_what_unbound_calls_give()
    {
        var path = Path.Combine(TestPaths.ModelsDir, "test", "tiny-sd3", "transformer", "model.onnx");
        using var transformer = OnnxComponent.Load("transformer", path, new SessionFactory(ExecutionDevice.Parse("cpu"), 1, 1));
        using var lease = transformer.Use();
        const int rows = 2, h = 8, w = 6, length = 8, width = 96, pooledWidth = 80;
        float[] Noise(int count, long seed)
        {
            var values = new float[count];
            new TorchGenerator(seed).FillNormal(values);
            return values;
        }
        var hidden = Noise(rows * length * width, 1);
        var pooled = Noise(rows * pooledWidth, 2);
        List<(string, ReadOnlyMemory<float>, long[])> Inputs(float[] latents, float t) =>
        [
            ("hidden_states", latents, [rows, 16, h, w]),
            ("timestep", new[] { t, t }, [rows]),
            ("encoder_hidden_states", hidden, [rows, length, width]),
            ("pooled_projections", pooled, [rows, pooledWidth]),
        ];
        var conditioning = new FamilyConditioning(hidden, length, width, pooled, pooledWidth, rows) { Slot = new TransformerSlot([hidden, pooled]) };
        using var slot = conditioning.Slot;
        using var runOptions = new RunOptions();
        var count = rows * 16 * h * w;
        var latents = Noise(count, 3);
        float[] Unbound(float t)
        {
            var output = new float[count];
            TransformerCall.Run(transformer, runOptions, Inputs(latents, t), output);
            return output;
        }

        Assert.Null(slot.For(Inputs(latents, 900f), count));
        var first = new float[count];
        TransformerCall.Run(transformer, runOptions, Inputs(latents, 900f), first, conditioning);
        Assert.NotNull(slot.For(Inputs(latents, 900f), count)); // the first call bound the loop's tensors
        Assert.Equal(Unbound(900f), first);
        var loop = slot.For(Inputs(latents, 900f), count)!;
        // The latents array is the loop's own buffer, rewritten in place between steps: the bound tensors must follow it.
        for (var step = 0; step < 3; step++)
        {
            var t = 800f - 100f * step;
            Noise(count, 10 + step).CopyTo(latents, 0);
            var bound = new float[count];
            TransformerCall.Run(transformer, runOptions, Inputs(latents, t), bound, conditioning);
            Assert.Equal(Unbound(t), bound);
            // The conditioning is written into the bound tensors at the first bound call, after the bind, so it counts as
            // written then (a GPU binds it again: see StepBindingTests); later only the latents and timestep are.
            Assert.Equal(step == 0 ? 4 : 2, loop.LastWritten);
        }
        // Another shape (a loop of another size) is not served by this binding.
        Assert.Null(slot.For(Inputs(latents, 1f).Select(i => i.Item1 == "hidden_states" ? (i.Item1, i.Item2, new long[] { rows, 16, w, h }) : i).ToList(), count));
    }
}
