using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using LocalDiffusion.Adapters;

namespace LocalDiffusion.Tests.Adapters;

/// <summary>
/// Seeded fuzzing of the LoRA reader (<see cref="LoraFile"/>) over mutated copies of the real LoRA files in
/// models/test/lora (kohya, PEFT, LyCORIS LoHa/LoKr, SDXL text encoder 2). Mutations act on the tensor list, so they
/// reach the LoRA rules behind the safetensors layer: keys dropped, duplicated under another part (down ↔ up, LoRA ↔
/// LoHa ↔ LoKr names), renamed to garbage; a dimension set to 0, 1 or a random size, or one added or removed; alphas
/// made NaN, infinite, zero or non-scalar. A file that opens must give every layer's tensors, rank, scale and (LyCORIS)
/// change ΔW; anything else must be a <see cref="LoraException"/> or <see cref="SafetensorsException"/> naming the file,
/// never another type. Work per case is bounded by the file's size (ΔW is computed only up to 2²⁰ values).
/// LOCALDIFFUSION_FUZZ_SCALE multiplies the case count, LOCALDIFFUSION_FUZZ_SEED changes the cases.
/// </summary>
public sealed class LoraFileFuzzTests
{
    private static readonly int Scale = int.TryParse(Environment.GetEnvironmentVariable("LOCALDIFFUSION_FUZZ_SCALE"), out var s) && s > 0 ? s : 1;

    private static readonly int Seed = int.TryParse(Environment.GetEnvironmentVariable("LOCALDIFFUSION_FUZZ_SEED"), out var seed) ? seed : 20261207;

    private static readonly string[] Sources = ["kohya_fp16.safetensors", "peft_fp32.safetensors", "lycoris_loha.safetensors", "lycoris_lokr.safetensors", "sdxl_te2.safetensors"];

    // Part names a key can be given instead of its own (every LoRA, LoHa and LoKr part, and an unknown one).
    private static readonly string[] PartNames =
        ["lora_down.weight", "lora_up.weight", "alpha", "lora_A.weight", "lora_B.weight", "hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b",
            "lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "bogus"];

    private sealed record Tensor(string Name, long[] Shape, float[] Values);

    [Fact]
    public void MutatedLoraFilesOpenWhollyOrGiveOnlyLoraAndSafetensorsExceptions()
    {
        var random = new Random(Seed);
        var originals = Sources.Select(Read).ToArray();
        int opened = 0, refused = 0;
        using var dir = new TempDirectory();
        for (var i = 0; i < 400 * Scale; i++)
        {
            var tensors = originals[i % originals.Length].ToList();
            for (var m = random.Next(1, 4); m > 0; m--) Mutate(random, tensors);
            var path = Path.Combine(dir.Path, $"case{i}.safetensors");
            File.WriteAllBytes(path, Write(tensors));
            try
            {
                using var lora = LoraFile.Open(path);
                foreach (var layer in lora.Layers) Use(lora, layer);
                opened++;
            }
            catch (Exception e) when (e is LoraException or SafetensorsException)
            {
                Assert.Contains(path, e.Message);
                refused++;
            }
            File.Delete(path);
        }
        Assert.True(opened > 40 && refused > 100, $"{opened} opened, {refused} refused");
    }

    // Found by the fuzzing (seed 20261207, scale 15): a LoKr factor with a zero-length side divided by zero in ΔW.
    [Theory]
    [InlineData("lycoris_lokr.safetensors")]
    [InlineData("kohya_fp16.safetensors")]
    public void AZeroLengthDimensionIsRefusedNamingTheKey(string source)
    {
        var tensors = Read(source);
        var k = tensors.FindIndex(t => t.Shape.Length >= 2);
        long[] shape = [.. tensors[k].Shape[..^1], 0];
        tensors[k] = tensors[k] with { Shape = shape, Values = [] };
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, "zero.safetensors");
        File.WriteAllBytes(path, Write(tensors));
        var e = Assert.Throws<LoraException>(() => LoraFile.Open(path));
        Assert.Contains($"key \"{tensors[k].Name}\": shape [{string.Join(", ", shape)}] has a zero-length dimension", e.Message);
    }

    // What the merge reads of a layer: its values, rank and scale, and a LyCORIS layer's ΔW.
    private static void Use(LoraFile lora, LoraLayer layer)
    {
        foreach (var part in layer.Parts.Values) lora.File.ReadFloat32(part);
        _ = layer.Rank;
        _ = layer.Down;
        _ = layer.Up;
        Assert.False(float.IsNaN(layer.Scale), $"{layer.Key.Module}: the scale is NaN");
        if (layer.Kind == LoraKind.LoRA) return;
        var (rows, columns) = LycorisDelta.CheckShapes(lora.Path, layer.Kind, layer.Parts);
        if (rows * columns <= 1 << 20) LycorisDelta.Add(lora.File, layer, 0.5f, new float[rows * columns]);
    }

    private static void Mutate(Random random, List<Tensor> tensors)
    {
        if (tensors.Count == 0) return;
        var k = random.Next(tensors.Count);
        var t = tensors[k];
        switch (random.Next(7))
        {
            case 0:
                tensors.RemoveAt(k);
                break;
            case 1:
                tensors.Add(t with { Name = WithPart(t.Name, PartNames[random.Next(PartNames.Length)]) });
                break;
            case 2:
                tensors[k] = t with { Name = WithPart(t.Name, PartNames[random.Next(PartNames.Length)]) };
                break;
            case 3:
                tensors[k] = t with { Name = random.Next(2) == 0 ? "garbage" + random.Next(100) : t.Name.Replace('_', '.') };
                break;
            case 4:
            {
                var shape = (long[])t.Shape.Clone();
                if (shape.Length > 0) shape[random.Next(shape.Length)] = random.Next(3) switch { 0 => 0, 1 => 1, _ => random.Next(1, 70) };
                tensors[k] = Resized(random, t, shape);
                break;
            }
            case 5:
            {
                long[] shape = random.Next(2) == 0 ? [.. t.Shape, 1] : t.Shape.Length > 0 ? t.Shape[..^1] : [2];
                tensors[k] = Resized(random, t, shape);
                break;
            }
            default:
            {
                var alpha = tensors.FindIndex(x => x.Name.EndsWith(".alpha", StringComparison.Ordinal));
                if (alpha < 0) break;
                float[] values = random.Next(5) switch
                {
                    0 => [float.NaN], 1 => [float.PositiveInfinity], 2 => [0f], 3 => [-4f], _ => [1f, 2f],
                };
                tensors[alpha] = tensors[alpha] with { Shape = values.Length == 1 ? [] : [values.Length], Values = values };
                break;
            }
        }
    }

    private static string WithPart(string name, string part)
    {
        // kohya/LyCORIS keys are module.part(.weight); PEFT's are module.lora_A.weight.
        foreach (var known in PartNames.OrderByDescending(p => p.Length))
        {
            var at = name.IndexOf("." + known, StringComparison.Ordinal);
            if (at >= 0) return name[..at] + "." + part;
        }
        return name + "." + part;
    }

    private static Tensor Resized(Random random, Tensor t, long[] shape)
    {
        var count = shape.Aggregate(1L, (a, d) => a * d);
        var values = new float[Math.Min(count, 1 << 16)];
        for (var i = 0; i < values.Length; i++) values[i] = (float)(random.NextDouble() - 0.5);
        // A size over the cap keeps its shape with too few values: the safetensors layer must refuse it.
        return t with { Shape = shape, Values = values };
    }

    private static List<Tensor> Read(string name)
    {
        using var file = SafetensorsFile.Open(Path.Combine(TestPaths.ModelsDir, "test", "lora", name));
        return file.Entries.OrderBy(e => e.FileOffset).Select(e => new Tensor(e.Name, e.Shape, file.ReadFloat32(e))).ToList();
    }

    private static byte[] Write(List<Tensor> tensors)
    {
        var header = new Dictionary<string, object>();
        long offset = 0;
        foreach (var t in tensors)
        {
            header[t.Name] = new { dtype = "F32", shape = t.Shape, data_offsets = new[] { offset, offset + 4L * t.Values.Length } };
            offset += 4L * t.Values.Length;
        }
        var json = JsonSerializer.SerializeToUtf8Bytes(header);
        var bytes = new byte[8 + json.Length + offset];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        var pos = 8 + json.Length;
        foreach (var t in tensors)
            foreach (var v in t.Values)
            {
                BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(pos), v);
                pos += 4;
            }
        return bytes;
    }
}
