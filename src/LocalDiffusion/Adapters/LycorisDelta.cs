using System.Numerics.Tensors;
using LocalDiffusion.Tensors;

namespace LocalDiffusion.Adapters;

/// <summary>
/// LyCORIS's LoHa and LoKr changes as AUTOMATIC1111's built-in Lora extension merges them (network_hada.py,
/// network_lokr.py; formulas checked against KohakuBlueleaf/LyCORIS's modules): LoHa ΔW = (w1a · w1b) ⊙ (w2a · w2b),
/// LoKr ΔW = w1 ⊗ w2 with w1 = w1_a · w1_b and w2 = w2_a · w2_b when decomposed, both as [out, in·kh·kw] (a conv factor's
/// kernel flattened into its columns, which is the layout of the Kronecker product of [a, c] and [b, d·kh·kw]). The
/// scale (alpha / rank) is <see cref="LoraLayer.Scale"/>.
/// </summary>
internal static class LycorisDelta
{
    private static long Columns(SafetensorsEntry e) => TensorShape.Count(e.Shape.AsSpan(1));

    private static string Shape(SafetensorsEntry e) => $"[{string.Join(", ", e.Shape)}]";

    /// <summary>The change's [out, in·kh·kw] size; the parts' shapes must agree with each other.</summary>
    public static (long Out, long In) CheckShapes(string path, LoraKind kind, IReadOnlyDictionary<LoraPart, SafetensorsEntry> parts)
    {
        if (kind == LoraKind.LoHa)
        {
            var (w1a, w1b, w2a, w2b) = (parts[LoraPart.HadaW1A], parts[LoraPart.HadaW1B], parts[LoraPart.HadaW2A], parts[LoraPart.HadaW2B]);
            foreach (var (a, b) in new[] { (w1a, w1b), (w2a, w2b) })
                if (a.Shape.Length != 2 || b.Shape.Length is not (2 or 4) || a.Shape[1] != b.Shape[0] || a.Shape[1] == 0)
                    throw new LoraException(path, b.Name, $"{Shape(a)} · {Shape(b)} is not a low-rank product ([out, r] · [r, in(, kh, kw)])");
            if (w1a.Shape[0] != w2a.Shape[0] || Columns(w1b) != Columns(w2b))
                throw new LoraException(path, w2b.Name, $"the two LoHa products have different shapes ({Shape(w1a)}·{Shape(w1b)} and {Shape(w2a)}·{Shape(w2b)})");
            return (w1a.Shape[0], Columns(w1b));
        }
        var (a1, c1) = Factor(path, parts, LoraPart.LokrW1, LoraPart.LokrW1A, LoraPart.LokrW1B);
        var (b2, d2) = Factor(path, parts, LoraPart.LokrW2, LoraPart.LokrW2A, LoraPart.LokrW2B);
        return (a1 * b2, c1 * d2);
    }

    // A LoKr factor's [rows, columns]: whole, or the product of its two halves.
    private static (long Rows, long Columns) Factor(string path, IReadOnlyDictionary<LoraPart, SafetensorsEntry> parts, LoraPart whole, LoraPart a, LoraPart b)
    {
        if (parts.TryGetValue(whole, out var w))
            return w.Shape.Length >= 2 ? (w.Shape[0], Columns(w)) : throw new LoraException(path, w.Name, $"{Shape(w)} is not a matrix");
        var (left, right) = (parts[a], parts[b]);
        if (left.Shape.Length != 2 || right.Shape.Length < 2 || left.Shape[1] != right.Shape[0] || left.Shape[1] == 0)
            throw new LoraException(path, right.Name, $"{Shape(left)} · {Shape(right)} is not a low-rank product ([rows, r] · [r, columns])");
        return (left.Shape[0], Columns(right));
    }

    /// <summary>delta[out, in] += factor · ΔW of <paramref name="layer"/> (<paramref name="factor"/> holds the weight and the scale).</summary>
    public static void Add(SafetensorsFile file, LoraLayer layer, float factor, float[] delta)
    {
        if (layer.Kind == LoraKind.LoHa)
        {
            var first = Product(file, layer.Parts[LoraPart.HadaW1A], layer.Parts[LoraPart.HadaW1B]);
            var second = Product(file, layer.Parts[LoraPart.HadaW2A], layer.Parts[LoraPart.HadaW2B]);
            TensorPrimitives.Multiply(first, second, first);
            TensorPrimitives.MultiplyAdd(first, factor, delta, delta);
            return;
        }
        var (w1, c) = FactorValues(file, layer, LoraPart.LokrW1, LoraPart.LokrW1A, LoraPart.LokrW1B);
        var (w2, d) = FactorValues(file, layer, LoraPart.LokrW2, LoraPart.LokrW2A, LoraPart.LokrW2B);
        int a = w1.Length / c, b = w2.Length / d, width = c * d;
        // (w1 ⊗ w2)[i·b + k, j·d + l] = w1[i, j] · w2[k, l]
        for (var i = 0; i < a; i++)
            for (var k = 0; k < b; k++)
            {
                var row = delta.AsSpan((i * b + k) * width, width);
                var w2Row = w2.AsSpan(k * d, d);
                for (var j = 0; j < c; j++)
                    TensorPrimitives.MultiplyAdd(w2Row, factor * w1[i * c + j], row.Slice(j * d, d), row.Slice(j * d, d));
            }
    }

    private static (float[] Values, int Columns) FactorValues(SafetensorsFile file, LoraLayer layer, LoraPart whole, LoraPart a, LoraPart b) =>
        layer.Parts.TryGetValue(whole, out var w)
            ? (file.ReadFloat32(w), (int)Columns(w))
            : (Product(file, layer.Parts[a], layer.Parts[b]), (int)Columns(layer.Parts[b]));

    // left [m, r] · right [r, n…] as [m, n…], row by row.
    private static float[] Product(SafetensorsFile file, SafetensorsEntry left, SafetensorsEntry right)
    {
        var l = file.ReadFloat32(left);
        var r = file.ReadFloat32(right);
        int m = (int)left.Shape[0], rank = (int)left.Shape[1], n = (int)Columns(right);
        var result = new float[m * n];
        for (var i = 0; i < m; i++)
        {
            var row = result.AsSpan(i * n, n);
            for (var k = 0; k < rank; k++) TensorPrimitives.MultiplyAdd(r.AsSpan(k * n, n), l[i * rank + k], row, row);
        }
        return result;
    }
}
