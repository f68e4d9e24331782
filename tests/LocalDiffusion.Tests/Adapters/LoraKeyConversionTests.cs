using System.Text.Json;
using LocalDiffusion.Adapters;

namespace LocalDiffusion.Tests.Adapters;

// TestData/Adapters/sd15_kohya_to_peft.json (tools/build_lora_test_files.py): SD 1.5's kohya LoRA/LoCon key names and the
// names diffusers v0.31.0's converters give them. The engine resolves the kohya names against a model's module paths (as an
// exporter writes them in node names) and must land on the module diffusers names.
public sealed class LoraKeyConversionTests
{
    private static JsonElement Table() =>
        JsonDocument.Parse(File.ReadAllText(TestPaths.TestData("Adapters", "sd15_kohya_to_peft.json"))).RootElement;

    // The UNet's nodes as optimum names them (/unet/… in a wrapped export: an extra leading segment), the text encoder's as
    // an export of CLIPTextModel's encoder alone (/layers.0/…: the LoRA's text_model.encoder prefix missing).
    private static Dictionary<string, ModuleResolver> Resolvers(JsonElement table)
    {
        var targets = new Dictionary<string, List<WeightTarget>>();
        var i = 0;
        foreach (var m in table.GetProperty("modules").EnumerateArray())
        {
            var component = m.GetProperty("component").GetString()!;
            var path = m.GetProperty("path").GetString()!;
            var conv = m.GetProperty("kind").GetString() == "conv";
            var modulePath = component == "unet" ? "unet." + path : path["text_model.encoder.".Length..];
            var target = new WeightTarget(modulePath, conv ? path + ".weight" : $"onnx::MatMul_{i++}", conv ? WeightLayout.Conv : WeightLayout.MatMulTransposed,
                conv ? [8, 8, 3, 3] : [8, 8], 1, "/" + modulePath.Replace('.', '/') + (conv ? "/Conv" : "/MatMul"));
            if (!targets.TryGetValue(component, out var list)) targets[component] = list = [];
            list.Add(target);
        }
        return targets.ToDictionary(kv => kv.Key, kv => new ModuleResolver(kv.Value));
    }

    [Fact]
    public void KohyaNamesResolveToTheModulesDiffusersConvertsThemTo()
    {
        var table = Table();
        var resolvers = Resolvers(table);
        var pairs = table.GetProperty("pairs").EnumerateArray().ToList();
        Assert.True(pairs.Count > 300);
        var byComponent = pairs.Select(p => LoraKey.Parse("sd15.safetensors", p.GetProperty("kohya").GetString()! + ".lora_down.weight"))
            .GroupBy(k => k.Component).ToDictionary(g => g.Key, g => ModuleResolver.SharedPrefixLength(g.Select(k => k.Module).ToList(), true));
        foreach (var pair in pairs)
        {
            var kohya = LoraKey.Parse("sd15.safetensors", pair.GetProperty("kohya").GetString()! + ".lora_down.weight");
            var peftKey = pair.GetProperty("peft").GetString()!;
            var peft = LoraKey.Parse("sd15.safetensors", peftKey);
            Assert.Equal(peft.Component, kohya.Component);
            var resolver = resolvers[kohya.Component];
            var fromKohya = resolver.Resolve(kohya.Module, true, byComponent[kohya.Component]);
            var fromPeft = resolver.Resolve(peft.Module, false, kohya.Component == "unet" ? 0 : "text_model.encoder.".Length);
            Assert.NotNull(fromKohya);
            Assert.Same(fromPeft, fromKohya);
            // diffusers' module path is the weight's, less the exporter's prefix
            Assert.True(fromKohya!.ModulePath.EndsWith(peft.Module, StringComparison.Ordinal) || peft.Module.EndsWith(fromKohya.ModulePath, StringComparison.Ordinal),
                $"{pair}: {fromKohya.ModulePath}");
        }
    }

    [Theory]
    [InlineData("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0.lora_up.weight", "unet", "down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_out_0", true, "Up")]
    [InlineData("lora_te2_text_model_encoder_layers_0_self_attn_q_proj.alpha", "text_encoder_2", "text_model_encoder_layers_0_self_attn_q_proj", true, "Alpha")]
    [InlineData("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.down.weight", "unet", "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0", false, "Down")]
    [InlineData("text_encoder.text_model.encoder.layers.0.self_attn.to_k_lora.up.weight", "text_encoder", "text_model.encoder.layers.0.self_attn.k_proj", false, "Up")]
    [InlineData("text_encoder.text_model.encoder.layers.0.mlp.fc1.lora_linear_layer.down.weight", "text_encoder", "text_model.encoder.layers.0.mlp.fc1", false, "Down")]
    [InlineData("unet.mid_block.attentions.0.proj_in.lora.up.weight", "unet", "mid_block.attentions.0.proj_in", false, "Up")]
    [InlineData("lora_unet_mid_block_attentions_0_proj_in.hada_w1_a", "unet", "mid_block_attentions_0_proj_in", true, "HadaW1A")]
    [InlineData("lora_te_text_model_encoder_layers_0_mlp_fc1.lokr_w2_b", "text_encoder", "text_model_encoder_layers_0_mlp_fc1", true, "LokrW2B")]
    // SD 3 / FLUX: diffusers' transformer and third text encoder, kohya's FLUX names (the transformer's, under lora_unet_), and
    // trainers' diffusers names joined with '_' (lora_transformer_).
    [InlineData("transformer.transformer_blocks.0.attn.to_q.lora_A.weight", "transformer", "transformer_blocks.0.attn.to_q", false, "Down")]
    [InlineData("transformer.single_transformer_blocks.3.proj_mlp.lora.up.weight", "transformer", "single_transformer_blocks.3.proj_mlp", false, "Up")]
    [InlineData("transformer.transformer_blocks.1.attn.to_out.0.alpha", "transformer", "transformer_blocks.1.attn.to_out.0", false, "Alpha")]
    [InlineData("text_encoder_3.encoder.block.0.layer.0.SelfAttention.q.lora_B.weight", "text_encoder_3", "encoder.block.0.layer.0.SelfAttention.q", false, "Up")]
    [InlineData("lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight", "transformer", "double_blocks_0_img_attn_qkv", true, "Down")]
    [InlineData("lora_unet_single_blocks_37_linear1.alpha", "transformer", "single_blocks_37_linear1", true, "Alpha")]
    [InlineData("lora_transformer_single_transformer_blocks_0_attn_to_q.lora_up.weight", "transformer", "single_transformer_blocks_0_attn_to_q", true, "Up")]
    // XLabs' processor keys take kohya's names for the BFL modules diffusers v0.31.0's XLabs converter maps them to.
    [InlineData("double_blocks.0.processor.qkv_lora1.down.weight", "transformer", "double_blocks_0_img_attn_qkv", true, "Down")]
    [InlineData("double_blocks.7.processor.qkv_lora2.up.weight", "transformer", "double_blocks_7_txt_attn_qkv", true, "Up")]
    [InlineData("diffusion_model.double_blocks.1.processor.proj_lora1.up.weight", "transformer", "double_blocks_1_img_attn_proj", true, "Up")]
    [InlineData("double_blocks.18.processor.proj_lora2.down.weight", "transformer", "double_blocks_18_txt_attn_proj", true, "Down")]
    [InlineData("diffusion_model.single_blocks.3.processor.proj_lora2.up.weight", "transformer", "single_blocks_3_linear2", true, "Up")]
    public void ParsesEveryKeyForm(string key, string component, string module, bool underscored, string part) =>
        Assert.Equal(new LoraKey(component, module, underscored, Enum.Parse<LoraPart>(part)), LoraKey.Parse("x.safetensors", key));

    [Theory]
    [InlineData("lora_unet_mid_block_attentions_0_proj_in.hada_t1", "LoHa with a CP-decomposed (Tucker) conv")]
    [InlineData("lora_unet_mid_block_attentions_0_proj_in.lokr_t2", "LoKr with a CP-decomposed (Tucker) conv")]
    [InlineData("lora_unet_mid_block_attentions_0_proj_in.dora_scale", "DoRA")]
    [InlineData("lora_prior_unet_down_levels_0_attn.lora_down.weight", "not a kohya LoRA key")]
    [InlineData("diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight", "Black Forest Labs' module names")]
    [InlineData("double_blocks.0.img_attn.qkv.lora_A.weight", "Black Forest Labs' module names")]
    [InlineData("single_blocks.0.processor.qkv_lora2.up.weight", "XLabs single-block qkv LoRA, which diffusers v0.31.0 cannot load")]
    [InlineData("double_blocks.0.processor.proj_lora1.alpha", "not an XLabs FLUX LoRA key")]
    [InlineData("model.diffusion_model.input_blocks.weight", "not a LoRA key")]
    public void RefusesOtherAdapterFormatsByName(string key, string expected)
    {
        var e = Assert.Throws<LoraException>(() => LoraKey.Parse("x.safetensors", key));
        Assert.Contains(expected, e.Message);
        Assert.Contains("x.safetensors", e.Message);
        Assert.Contains(key, e.Message);
    }

    // diffusers v0.31.0 reads a file with any .lora_down.weight key as kohya's: XLabs keys in it are refused.
    [Fact]
    public void AnXLabsKeyInAKohyaFileIsRefused()
    {
        var e = Assert.Throws<LoraException>(() => LoraKey.Parse("x.safetensors", "double_blocks.0.processor.qkv_lora1.down.weight", kohyaFile: true));
        Assert.Contains("also holds kohya keys", e.Message);
        Assert.Contains("double_blocks.0.processor.qkv_lora1.down.weight", e.Message);
    }
}
