using System.Text.RegularExpressions;

namespace LocalDiffusion.Adapters;

/// <summary>
/// kohya sd-scripts' FLUX LoRAs name Black Forest Labs' modules (<c>lora_unet_double_blocks_0_img_attn_qkv</c>), not
/// diffusers'. This maps them to diffusers' FluxTransformer2DModel modules as diffusers v0.31.0's
/// <c>_convert_kohya_flux_lora_to_diffusers</c> does. BFL fuses q, k and v (and, in a single block, the MLP's input) into one
/// Linear: such a LoRA's down matrix applies to every part and its up matrix's rows are split among them in order, each
/// part taking as many rows as its weight has outputs (the converter's split; 3072, 3072, 3072, 12288 for FLUX.1).
/// </summary>
internal static partial class FluxKohyaNames
{
    [GeneratedRegex(@"^(double|single)_blocks_(\d+)_(.+)$", RegexOptions.CultureInvariant)]
    private static partial Regex Block();

    // BFL's other top-level modules, which diffusers v0.31.0's converter leaves unconverted (it warns and drops them).
    private static readonly string[] OtherFluxModules = ["img_in", "txt_in", "time_in_", "vector_in_", "guidance_in_", "final_layer_"];

    /// <summary>Whether a kohya module name (after <c>lora_unet_</c>) is one of FLUX's, not a UNet's.</summary>
    public static bool IsFluxModule(string module) =>
        Block().IsMatch(module) || OtherFluxModules.Any(m => module.StartsWith(m, StringComparison.Ordinal));

    /// <summary>
    /// The diffusers modules (dotted, in the order the up matrix's rows go to them) that the kohya FLUX module
    /// <paramref name="module"/> changes; null when diffusers' converter maps it to none.
    /// </summary>
    public static IReadOnlyList<string>? Targets(string module)
    {
        var m = Block().Match(module);
        if (!m.Success) return null;
        var block = m.Groups[2].Value;
        if (m.Groups[1].Value == "double")
        {
            var p = $"transformer_blocks.{block}.";
            return m.Groups[3].Value switch
            {
                "img_attn_qkv" => [p + "attn.to_q", p + "attn.to_k", p + "attn.to_v"],
                "img_attn_proj" => [p + "attn.to_out.0"],
                "img_mlp_0" => [p + "ff.net.0.proj"],
                "img_mlp_2" => [p + "ff.net.2"],
                "img_mod_lin" => [p + "norm1.linear"],
                "txt_attn_qkv" => [p + "attn.add_q_proj", p + "attn.add_k_proj", p + "attn.add_v_proj"],
                "txt_attn_proj" => [p + "attn.to_add_out"],
                "txt_mlp_0" => [p + "ff_context.net.0.proj"],
                "txt_mlp_2" => [p + "ff_context.net.2"],
                "txt_mod_lin" => [p + "norm1_context.linear"],
                _ => null,
            };
        }
        var s = $"single_transformer_blocks.{block}.";
        return m.Groups[3].Value switch
        {
            "linear1" => [s + "attn.to_q", s + "attn.to_k", s + "attn.to_v", s + "proj_mlp"],
            "linear2" => [s + "proj_out"],
            "modulation_lin" => [s + "norm.linear"],
            _ => null,
        };
    }

    /// <summary>
    /// The name of a FLUX LoRA format the engine does not read, when <paramref name="key"/> is in one: Black Forest Labs'
    /// own module names (<c>diffusion_model.double_blocks.0.img_attn.qkv.lora_A.weight</c>, for which diffusers v0.31.0
    /// has no converter). XLabs' processor keys (<see cref="FluxXLabsNames"/>) are read before this is asked.
    /// </summary>
    public static string? RefusedFormat(string key)
    {
        if (key.StartsWith("diffusion_model.", StringComparison.Ordinal))
            return "a FLUX LoRA in Black Forest Labs' module names (diffusion_model.double_blocks…)";
        if (key.StartsWith("double_blocks.", StringComparison.Ordinal) || key.StartsWith("single_blocks.", StringComparison.Ordinal))
            return "a FLUX LoRA in Black Forest Labs' module names (double_blocks.…/single_blocks.…)";
        return null;
    }
}
