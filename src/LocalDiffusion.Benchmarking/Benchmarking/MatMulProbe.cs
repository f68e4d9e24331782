using System.Diagnostics;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Benchmarking;

/// <summary>
/// What this machine's CPU reaches on a large fp32 MatMul through ONNX Runtime (the same library and threads as
/// the pipeline): the practical floor a UNet step is compared with. The one-node model is written here as raw
/// protobuf, so no file ships for it.
/// </summary>
internal static class MatMulProbe
{
    /// <summary>GFLOP/s of an n×n by n×n MatMul (2n³ FLOP per run): median of <paramref name="runs"/> after two warm-ups.</summary>
    public static double MeasureGflops(int? intraOpThreads, int n = 2048, int runs = 8)
    {
        using var options = new SessionOptions();
        if (intraOpThreads is { } t) options.IntraOpNumThreads = t;
        using var session = new InferenceSession(Model(), options);
        var a = new float[n * n];
        var b = new float[n * n];
        var random = new Random(1);
        for (var i = 0; i < a.Length; i++) { a[i] = (float)random.NextDouble() - 0.5f; b[i] = (float)random.NextDouble() - 0.5f; }
        using var va = OrtValue.CreateTensorValueFromMemory(a, [n, n]);
        using var vb = OrtValue.CreateTensorValueFromMemory(b, [n, n]);
        var times = new List<double>();
        for (var r = 0; r < runs + 2; r++)
        {
            var clock = Stopwatch.StartNew();
            using var outputs = session.Run(new RunOptions(), ["A", "B"], [va, vb], ["C"]);
            if (r >= 2) times.Add(clock.Elapsed.TotalSeconds);
        }
        times.Sort();
        return 2.0 * n * n * n / times[times.Count / 2] / 1e9;
    }

    // ModelProto { ir_version 8, opset_import { "" 17 }, graph { node MatMul(A, B) -> C, inputs A, B, output C } },
    // float tensors with symbolic dimensions.
    private static byte[] Model()
    {
        var graph = new List<byte>();
        graph.AddRange(Field(1, [.. Field(1, "A"), .. Field(1, "B"), .. Field(2, "C"), .. Field(4, "MatMul")]));
        graph.AddRange(Field(2, "matmul"));
        graph.AddRange(Field(11, Value("A", "m", "k")));
        graph.AddRange(Field(11, Value("B", "k", "n")));
        graph.AddRange(Field(12, Value("C", "m", "n")));
        var model = new List<byte>();
        model.AddRange(Varint(1 << 3 | 0)); model.AddRange(Varint(8));
        model.AddRange(Field(8, [.. Field(1, ""), .. Varint(2 << 3 | 0), .. Varint(17)]));
        model.AddRange(Field(7, [.. graph]));
        return [.. model];
    }

    private static byte[] Value(string name, string rows, string cols)
    {
        byte[] Dim(string symbol) => Field(1, Field(2, symbol));
        var shape = Field(2, [.. Dim(rows), .. Dim(cols)]);
        var tensor = Field(1, [.. Varint(1 << 3 | 0), .. Varint(1), .. shape]); // elem_type FLOAT
        return [.. Field(1, name), .. Field(2, tensor)];
    }

    private static byte[] Field(int number, string text) => Field(number, System.Text.Encoding.UTF8.GetBytes(text));

    private static byte[] Field(int number, byte[] payload) => [.. Varint((ulong)(number << 3 | 2)), .. Varint((ulong)payload.Length), .. payload];

    private static byte[] Varint(ulong value)
    {
        var bytes = new List<byte>();
        do
        {
            var b = (byte)(value & 0x7F);
            value >>= 7;
            bytes.Add(value == 0 ? b : (byte)(b | 0x80));
        } while (value != 0);
        return [.. bytes];
    }
}
