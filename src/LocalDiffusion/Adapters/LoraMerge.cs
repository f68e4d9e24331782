using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using LocalDiffusion.Onnx.Rewriting;

namespace LocalDiffusion.Adapters;

/// <summary>
/// Merges LoRAs into one model component's weights: W' = W + Σ w·(alpha/rank)·(up @ down) (LyCORIS LoHa/LoKr: their
/// ΔW, <see cref="LycorisDelta"/>), in float32 (conv LoRAs with
/// the down kernel flattened, up being 1×1), written in the initializer's own layout (transposed for torch.onnx's MatMul
/// weights) and type. Only the weights a LoRA touches are read and copied; the rest stay in the model file.
/// </summary>
internal static class LoraMerge
{
    /// <summary>
    /// The merged weights for <paramref name="component"/> (<c>unet</c>, <c>text_encoder</c>, <c>text_encoder_2</c>) at
    /// <paramref name="modelPath"/>, or null when no LoRA has layers for it. Every LoRA module must map to a weight of
    /// this model with matching shapes, else a <see cref="LoraException"/> names the file and key — unless
    /// <paramref name="skipUnmatched"/>, where such layers are left out and counted in <paramref name="notes"/>.
    /// </summary>
    public static InitializerOverrides? Build(string component, string modelPath, IReadOnlyList<(LoraFile File, float Weight)> loras,
        string identity, bool skipUnmatched, List<string> notes)
    {
        var relevant = loras.Select(l => (l.File, l.Weight, Layers: l.File.Layers.Where(x => x.Key.Component == component).ToList()))
            .Where(l => l.Layers.Count > 0).ToList();
        if (relevant.Count == 0) return null;

        using var model = ModelWeights.Open(modelPath);
        var resolver = new ModuleResolver(model.Targets);
        var layersPerBlock = component == "unet" ? SgmNames.LayersPerBlock(model.Targets) : null;
        // First every layer is resolved and checked, so a LoRA for another model is refused before any weight is read.
        var changes = new Dictionary<string, (WeightTarget Target, List<(LoraFile File, LoraLayer Layer, float Factor, int UpRow)> Parts)>(StringComparer.Ordinal);
        foreach (var (file, weight, layers) in relevant)
        {
            var skipped = 0;
            foreach (var group in layers.GroupBy(l => l.Key.Underscored))
            {
                var shared = ModuleResolver.SharedPrefixLength(group.Select(l => l.Key.Module).ToList(), group.Key);
                foreach (var layer in group)
                {
                    var (targets, problem) = LoraSplit.Resolve(file, layer, resolver, shared, component, modelPath, layersPerBlock);
                    if (targets.Count == 0 && problem is null)
                        problem = $"module {layer.Key.Module} is not a weight of this {component} ({modelPath}): the LoRA was made for another model"
                          + (model.Targets.Count == 0 ? " (or this export's node names carry no module paths)" : "");
                    problem ??= LoraSplit.RowsProblem(layer, targets) ?? targets.Select(t => ShapeProblem(layer, t.Target, t.Rows)).FirstOrDefault(p => p is not null);
                    if (problem is not null)
                    {
                        if (!skipUnmatched) throw new LoraForAnotherModelException(file.Path, layer.Down.Name, problem);
                        skipped++;
                        continue;
                    }
                    if (weight == 0f) continue;
                    foreach (var (target, upRow, _) in targets)
                    {
                        if (!changes.TryGetValue(target.Initializer, out var entry))
                            changes[target.Initializer] = entry = (target, []);
                        entry.Parts.Add((file, layer, weight * layer.Scale, upRow));
                    }
                }
            }
            if (skipped > 0) notes.Add($"{file.Path}: {skipped} of its {layers.Count} {component} layers match no weight of this model and were skipped");
        }

        // Then each weight is read once and every change added into it in place: no separate change buffer (an SD 1.5
        // UNet's attention weights are 1 GB in float32, and a second gigabyte of garbage per switch stayed resident).
        var overrides = new InitializerOverrides(identity);
        try
        {
            foreach (var (target, parts) in changes.Values)
            {
                var merged = model.Read(target);
                foreach (var (file, layer, factor, upRow) in parts) AddProduct(file, layer, factor, upRow, merged, target);
                if (target.DataType == OnnxGraph.Float16)
                {
                    var halves = new Float16[merged.Length];
                    TensorPrimitives.ConvertToHalf(merged, System.Runtime.InteropServices.MemoryMarshal.Cast<Float16, Half>(halves.AsSpan()));
                    overrides.Add(target.Initializer, halves, target.Dims);
                }
                else overrides.Add(target.Initializer, merged, target.Dims, target.Layout == WeightLayout.Conv);
                if (target.Layout == WeightLayout.Conv) overrides.HasConvWeights = true;
                if (target.ThroughCast) overrides.HasCastWeights = true;
            }
            return overrides;
        }
        catch
        {
            overrides.Dispose();
            throw;
        }
    }

    // rows: how many of the up matrix's rows go to this weight (all but where a fused kohya FLUX module is split).
    private static string? ShapeProblem(LoraLayer layer, WeightTarget target, long rows)
    {
        if (layer.Kind != LoraKind.LoRA)
        {
            var (outF, inF) = LycorisDelta.CheckShapes("", layer.Kind, layer.Parts);
            return outF == target.OutFeatures && inF == target.InFeatures ? null
                : $"the {layer.Kind} maps {inF} → {outF} features, but {target.NodeName}'s weight [{string.Join(", ", target.Dims)}] maps {target.InFeatures} → {target.OutFeatures}: it was made for another model";
        }
        var d = layer.Down.Shape;
        var u = layer.Up.Shape;
        var kernel = d.Length == 4 ? d[2] * d[3] : 1;
        if (target.Layout == WeightLayout.Conv)
        {
            var targetKernel = target.Dims.Skip(2).ToArray();
            if (d.Length == 4 && (target.Dims.Length != 4 || d[2] != target.Dims[2] || d[3] != target.Dims[3]))
                return $"the LoRA's kernel is {d[2]}×{d[3]} but {target.NodeName}'s weight is [{string.Join(", ", target.Dims)}]";
            if (d.Length == 2 && targetKernel.Any(k => k != 1))
                return $"a linear LoRA pair cannot change the {string.Join("×", targetKernel)} convolution {target.NodeName}";
        }
        else if (kernel != 1)
            return $"a {d[2]}×{d[3]} conv LoRA cannot change the linear layer {target.NodeName}";
        if (rows != target.OutFeatures || d[1] * kernel != target.InFeatures)
            return $"the LoRA maps {d[1] * kernel} → {rows} features, but {target.NodeName}'s weight [{string.Join(", ", target.Dims)}] maps {target.InFeatures} → {target.OutFeatures}: the LoRA was made for another model (e.g. an SDXL LoRA on an SD 1.x model, or an SD 3 LoRA on FLUX)";
        return null;
    }

    // The change is added in the initializer's own layout: [in, out] for torch.onnx's
    // MatMul weights (and Gemm without transB), [out, in·kh·kw] otherwise.
    private static bool StoredTransposed(WeightTarget target) => target.Layout is WeightLayout.MatMulTransposed or WeightLayout.GemmPlain;

    // weight += factor · up[out, r] · down[r, in], in the stored layout: one fused multiply-add over a contiguous row per
    // (row, r) — [out, in]: a down row scaled by up[o, k]; [in, out]: a (scaled) up column scaled by down[k, i]. Writing
    // the transpose directly keeps every access sequential (no strided transpose of a [out, in] change afterwards).
    // upRow: the first row of up that this weight takes (0 but for a split kohya FLUX module).
    private static void AddProduct(LoraFile file, LoraLayer layer, float factor, int upRow, float[] weight, WeightTarget target)
    {
        var transposed = StoredTransposed(target);
        var inF = (int)target.InFeatures;
        var outF = (int)target.OutFeatures;
        if (layer.Kind != LoraKind.LoRA)
        {
            if (transposed)
            {
                var torchLayout = new float[weight.Length];
                LycorisDelta.Add(file.File, layer, factor, torchLayout);
                for (var o = 0; o < outF; o++)
                    for (var i = 0; i < inF; i++)
                        weight[i * outF + o] += torchLayout[o * inF + i];
            }
            else LycorisDelta.Add(file.File, layer, factor, weight);
            if (!float.IsFinite(TensorPrimitives.Sum(weight)))
                throw new LoraException(file.Path, layer.Up.Name, "the merged weight is not finite (inf or NaN in the LyCORIS weights)");
            return;
        }
        var down = file.File.ReadFloat32(layer.Down);
        var rank = (int)layer.Rank!.Value;
        var up = file.File.ReadFloat32(layer.Up).AsSpan(upRow * rank, outF * rank);
        if (transposed)
        {
            var upColumns = new float[rank * outF]; // up transposed and scaled: row k is factor · up[:, k]
            for (var o = 0; o < outF; o++)
                for (var k = 0; k < rank; k++)
                    upColumns[k * outF + o] = factor * up[o * rank + k];
            for (var i = 0; i < inF; i++)
            {
                var row = weight.AsSpan(i * outF, outF);
                for (var k = 0; k < rank; k++)
                    TensorPrimitives.MultiplyAdd(upColumns.AsSpan(k * outF, outF), down[k * inF + i], row, row);
            }
        }
        else
        {
            for (var o = 0; o < outF; o++)
            {
                var row = weight.AsSpan(o * inF, inF);
                for (var k = 0; k < rank; k++)
                    TensorPrimitives.MultiplyAdd(down.AsSpan(k * inF, inF), factor * up[o * rank + k], row, row);
            }
        }
        if (!float.IsFinite(TensorPrimitives.Sum(weight)))
            throw new LoraException(file.Path, layer.Up.Name, "the merged weight is not finite (inf or NaN in the LoRA's weights)");
    }
}
