using System.Globalization;
using System.Text.RegularExpressions;

namespace LocalDiffusion.Adapters;

/// <summary>
/// kohya's SDXL LoRAs name UNet modules as Stability's generative-models (SGM) UNet does, not as diffusers does:
/// <c>input_blocks_4_1_transformer_blocks_0_attn1_to_q</c> for diffusers' <c>down_blocks.1.attentions.0…</c>. This maps them
/// to diffusers' (underscored) names as diffusers v0.31.0's <c>_maybe_map_sgm_blocks_to_diffusers</c> and
/// <c>_convert_unet_lora_key</c> do: input block i is down block (i − 1) / (L + 1), layer (i − 1) % (L + 1) (L: resnets per
/// down block, read from the model), its <c>op</c> the block's downsampler; the middle block's 0, 1, 2 are resnets.0,
/// attentions.0, resnets.1; output block i is up block i / (L + 1), layer i % (L + 1), a trailing <c>conv</c> its upsampler;
/// inside a resnet <c>in_layers_2</c>, <c>out_layers_3</c>, <c>emb_layers_1</c>, <c>skip_connection</c> are conv1, conv2,
/// time_emb_proj, conv_shortcut.
/// </summary>
internal static partial class SgmNames
{
    [GeneratedRegex(@"^(input_blocks|output_blocks)_(\d+)_(\d+)_(.+)$|^middle_block_(\d+)_(.+)$", RegexOptions.CultureInvariant)]
    private static partial Regex Block();

    [GeneratedRegex(@"(?:^|\.)down_blocks\.0\.resnets\.(\d+)(?:\.|$)", RegexOptions.CultureInvariant)]
    private static partial Regex FirstDownResnet();

    /// <summary>Resnets per down block of the model (diffusers' layers_per_block), from its module paths; null when it has no down_blocks.0.resnets.</summary>
    public static int? LayersPerBlock(IEnumerable<WeightTarget> targets)
    {
        var most = -1;
        foreach (var t in targets)
            if (FirstDownResnet().Match(t.ModulePath) is { Success: true } m) most = Math.Max(most, int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture));
        return most < 0 ? null : most + 1;
    }

    /// <summary>The diffusers name (underscored) of an SGM-named kohya module, or null when <paramref name="module"/> is not SGM-named.</summary>
    public static string? ToDiffusers(string module, int layersPerBlock)
    {
        var m = Block().Match(module);
        if (!m.Success) return null;
        if (m.Groups[5].Success)
        {
            var rest = m.Groups[6].Value;
            return m.Groups[5].Value switch
            {
                "0" => "mid_block_resnets_0_" + Resnet(rest),
                "1" => "mid_block_attentions_0_" + rest,
                "2" => "mid_block_resnets_1_" + Resnet(rest),
                _ => null,
            };
        }
        var i = int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture);
        var j = int.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture);
        var inner = m.Groups[4].Value;
        var span = layersPerBlock + 1;
        if (m.Groups[1].Value == "input_blocks")
        {
            if (i == 0) return null; // conv_in
            var (block, layer) = ((i - 1) / span, (i - 1) % span);
            if (inner == "op") return $"down_blocks_{block}_downsamplers_0_conv";
            return j switch { 0 => $"down_blocks_{block}_resnets_{layer}_{Resnet(inner)}", 1 => $"down_blocks_{block}_attentions_{layer}_{inner}", _ => null };
        }
        var (up, upLayer) = (i / span, i % span);
        // The upsampler follows the block's last layer: at index 2 after an attention, 1 in a block without one.
        if (j >= 1 && inner == "conv") return $"up_blocks_{up}_upsamplers_0_conv";
        return j switch { 0 => $"up_blocks_{up}_resnets_{upLayer}_{Resnet(inner)}", 1 => $"up_blocks_{up}_attentions_{upLayer}_{inner}", _ => null };
    }

    private static string Resnet(string inner) => inner switch
    {
        "in_layers_2" => "conv1",
        "out_layers_3" => "conv2",
        "emb_layers_1" => "time_emb_proj",
        "skip_connection" => "conv_shortcut",
        _ => inner,
    };
}
