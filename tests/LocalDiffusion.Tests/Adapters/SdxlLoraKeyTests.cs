using System.Text.Json;
using LocalDiffusion.Adapters;

namespace LocalDiffusion.Tests.Adapters;

// TestData/Adapters/sdxl_kohya_sgm_to_peft.json (tools/build_sdxl_lora_key_table.py): SDXL base's UNet modules under the SGM
// names kohya's SDXL LoRAs use (lora_unet_input_blocks_4_1_…, middle_block_…, output_blocks_…) and the names diffusers
// v0.31.0's converters give them. The engine maps the SGM names (layers per block read from the model's module paths) and
// must land on the module diffusers names, in an export whose nodes carry optimum's /unet/ prefix.
public sealed class SdxlLoraKeyTests
{
    [Fact]
    public void SgmNamedKohyaKeysResolveToTheModulesDiffusersConvertsThemTo()
    {
        var table = JsonDocument.Parse(File.ReadAllText(TestPaths.TestData("Adapters", "sdxl_kohya_sgm_to_peft.json"))).RootElement;
        var targets = table.GetProperty("modules").EnumerateArray().Select((m, i) =>
        {
            var path = "unet." + m.GetProperty("path").GetString()!;
            var conv = m.GetProperty("kind").GetString() == "conv";
            return new WeightTarget(path, conv ? path + ".weight" : $"onnx::MatMul_{i}", conv ? WeightLayout.Conv : WeightLayout.MatMulTransposed,
                conv ? [8, 8, 3, 3] : [8, 8], 1, "/" + path.Replace('.', '/') + (conv ? "/Conv" : "/MatMul"));
        }).ToList();
        Assert.Equal(2, SgmNames.LayersPerBlock(targets));
        var resolver = new ModuleResolver(targets);
        var pairs = table.GetProperty("pairs").EnumerateArray().ToList();
        Assert.True(pairs.Count > 700);
        foreach (var pair in pairs)
        {
            var kohya = LoraKey.Parse("sdxl.safetensors", pair.GetProperty("kohya").GetString()! + ".lora_down.weight");
            var peft = LoraKey.Parse("sdxl.safetensors", pair.GetProperty("peft").GetString()!);
            var mapped = SgmNames.ToDiffusers(kohya.Module, 2);
            Assert.NotNull(mapped);
            var fromKohya = resolver.Resolve(mapped!, true, 0);
            var fromPeft = resolver.Resolve(peft.Module, false, 0);
            Assert.NotNull(fromKohya);
            Assert.Same(fromPeft, fromKohya);
        }
    }

    [Theory]
    [InlineData("input_blocks_0_0_weight", null)] // conv_in is not a LoRA target here
    [InlineData("down_blocks_1_attentions_0_proj_in", null)] // already diffusers-named
    [InlineData("output_blocks_2_1_conv", "up_blocks_0_upsamplers_0_conv")] // SD 1.x: the upsampler of a block without attention
    [InlineData("middle_block_1_transformer_blocks_0_attn2_to_k", "mid_block_attentions_0_transformer_blocks_0_attn2_to_k")]
    public void MapsSgmBlockNames(string module, string? expected) => Assert.Equal(expected, SgmNames.ToDiffusers(module, 2));
}
