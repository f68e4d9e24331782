using System.Reflection;
using System.Text.Json;
using LocalDiffusion.Onnx.Rewriting;

namespace LocalDiffusion.Tests.Onnx;

/// <summary>
/// onnx.proto's field numbers are kept once, in <see cref="OnnxFields"/>, for every protobuf reader and writer of the
/// engine (OnnxGraph, OnnxFileScan, LoRA's LoraWeightsRewrite). Expected numbers: TestData/Onnx/onnx_fields.json, written
/// by tools/onnx_field_numbers.py from the onnx package's compiled descriptors; exact.
/// </summary>
public sealed class OnnxFieldsTests
{
    private static readonly FieldInfo[] Fields = typeof(OnnxFields).GetFields(BindingFlags.Public | BindingFlags.Static)
        .Where(f => f.IsLiteral).ToArray();

    [Fact]
    public void The_field_numbers_are_onnx_protos()
    {
        using var json = JsonDocument.Parse(File.ReadAllText(TestPaths.TestData("Onnx", "onnx_fields.json")));
        var expected = json.RootElement.GetProperty("fields").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32());
        Assert.Equal(expected.Keys.Order(), Fields.Select(f => f.Name).Order());
        foreach (var f in Fields) Assert.True(expected[f.Name] == (int)f.GetRawConstantValue()!, $"{f.Name}: {f.GetRawConstantValue()}, onnx.proto says {expected[f.Name]}");
    }

    [Fact]
    public void No_other_type_restates_them()
    {
        // A private copy elsewhere (as LoraWeightsRewrite and OnnxGraph each had) would drift unseen.
        var names = Fields.Select(f => f.Name).ToHashSet(StringComparer.Ordinal);
        var copies = typeof(OnnxFields).Assembly.GetTypes().Where(t => t != typeof(OnnxFields))
            .SelectMany(t => t.GetFields(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static | BindingFlags.DeclaredOnly)
                .Where(f => f.IsLiteral && names.Contains(f.Name)).Select(f => $"{t.FullName}.{f.Name}"))
            .ToList();
        Assert.True(copies.Count == 0, "field numbers restated: " + string.Join(", ", copies));
    }
}
