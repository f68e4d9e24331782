using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace LocalDiffusion.Tests.TestModels;

/// <summary>A model output read back as float32, with its shape.</summary>
internal sealed record Output(float[] Data, long[] Shape);

/// <summary>An input given as float32 values; the runner converts them to the element type the model declares.</summary>
internal sealed record Input(string Name, float[] Values, params long[] Shape);

/// <summary>Runs one component of a test model from float data, whatever element types it declares.</summary>
internal sealed class ComponentRunner : IDisposable
{
    private readonly InferenceSession _session;

    public ComponentRunner(VariantSpec variant, string component) =>
        _session = new InferenceSession(Path.Combine(variant.Folder, component, "model.onnx"));

    /// <summary>The shape a timestep input must have for this batch: [] (scalar), [1] or [batch], as declared.</summary>
    public long[] TimestepShape(int batch)
    {
        var dims = _session.InputMetadata["timestep"].Dimensions;
        return dims.Length == 0 ? [] : dims[0] == 1 ? [1] : [batch];
    }

    public IReadOnlyList<Output> Run(params Input[] inputs)
    {
        var values = new List<OrtValue>(inputs.Length);
        try
        {
            foreach (var input in inputs)
                values.Add(Create(_session.InputMetadata[input.Name].ElementDataType, input.Values, input.Shape));
            using var options = new RunOptions();
            using var outputs = _session.Run(options, inputs.Select(i => i.Name).ToArray(), values, _session.OutputNames);
            return outputs.Select(Read).ToList();
        }
        finally
        {
            foreach (var value in values)
                value.Dispose();
        }
    }

    public void Dispose() => _session.Dispose();

    private static OrtValue Create(TensorElementType type, float[] values, long[] shape)
    {
        switch (type)
        {
            case TensorElementType.Float:
                return OrtValue.CreateTensorValueFromMemory(values, shape);
            case TensorElementType.Float16:
                var halves = new Float16[values.Length];
                for (var i = 0; i < values.Length; i++)
                    halves[i] = (Float16)values[i];
                return OrtValue.CreateTensorValueFromMemory(halves, shape);
            case TensorElementType.Int32:
                var ints = new int[values.Length];
                for (var i = 0; i < values.Length; i++)
                    ints[i] = checked((int)values[i]);
                return OrtValue.CreateTensorValueFromMemory(ints, shape);
            case TensorElementType.Int64:
                var longs = new long[values.Length];
                for (var i = 0; i < values.Length; i++)
                    longs[i] = checked((long)values[i]);
                return OrtValue.CreateTensorValueFromMemory(longs, shape);
            default:
                throw new NotSupportedException($"test models declare no {type} inputs");
        }
    }

    private static Output Read(OrtValue value)
    {
        var info = value.GetTensorTypeAndShape();
        float[] data;
        if (info.ElementDataType == TensorElementType.Float16)
        {
            var halves = value.GetTensorDataAsSpan<Float16>();
            data = new float[halves.Length];
            for (var i = 0; i < halves.Length; i++)
                data[i] = halves[i].ToFloat();
        }
        else
        {
            data = value.GetTensorDataAsSpan<float>().ToArray();
        }
        return new Output(data, info.Shape);
    }
}

/// <summary>Reproducible test inputs.</summary>
internal static class TestInputs
{
    /// <summary>n standard-normal values times scale (Box–Muller over System.Random(seed)).</summary>
    public static float[] Normal(int n, int seed, float scale = 1f)
    {
        var random = new Random(seed);
        var values = new float[n];
        for (var i = 0; i < n; i++)
        {
            var u1 = 1.0 - random.NextDouble();
            var u2 = random.NextDouble();
            values[i] = scale * (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return values;
    }

    /// <summary>The same value n times (a timestep for every batch row).</summary>
    public static float[] Repeat(float value, long n) => Enumerable.Repeat(value, (int)n).ToArray();

    /// <summary>Mean of |a − b| over two equally long arrays.</summary>
    public static double MeanAbsDifference(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        double sum = 0;
        for (var i = 0; i < a.Length; i++)
            sum += Math.Abs(a[i] - b[i]);
        return sum / a.Length;
    }

    public static double MeanAbs(float[] a) => a.Average(x => Math.Abs((double)x));

    public static double StandardDeviation(float[] a)
    {
        var mean = a.Average(x => (double)x);
        return Math.Sqrt(a.Average(x => (x - mean) * (x - mean)));
    }

    public static void AssertFinite(float[] values, string what) =>
        Assert.True(values.All(float.IsFinite), $"{what} holds NaN or infinity");
}
