using System.Text.RegularExpressions;

namespace LocalDiffusion.Adapters;

/// <summary>
/// XLabs' FLUX LoRAs (x-flux, e.g. XLabs-AI/flux-RealismLora) hold attention-processor LoRAs on Black Forest Labs' blocks:
/// <c>double_blocks.N.processor.qkv_lora1.down.weight</c> / <c>.up.weight</c>, optionally under <c>diffusion_model.</c>,
/// with no alpha. diffusers v0.31.0 converts them (<c>_convert_xlabs_flux_lora_to_diffusers</c>) to the same diffusers
/// modules as kohya's names for those BFL modules, so each key is given the kohya module name
/// (<see cref="FluxKohyaNames"/>) and split the same way: qkv_lora1/qkv_lora2 are the image/text q, k, v fused (down shared,
/// up's rows split among them), proj_lora1/proj_lora2 the image/text output projections. diffusers splits an XLabs up
/// matrix into three equal row blocks and kohya's by each weight's outputs; FLUX's q, k and v have equal outputs, and an up
/// matrix whose rows are not their sum is refused either way.
/// </summary>
internal static partial class FluxXLabsNames
{
    [GeneratedRegex(@"^(?:diffusion_model\.)?(double|single)_blocks\.(\d+)\.processor\.", RegexOptions.CultureInvariant)]
    private static partial Regex Processor();

    [GeneratedRegex(@"^(qkv|proj)_lora([12])\.(down|up)\.weight$", RegexOptions.CultureInvariant)]
    private static partial Regex Layer();

    /// <summary>Whether <paramref name="key"/> is an XLabs processor key (<c>(diffusion_model.)double_blocks.N.processor.…</c> or single_blocks).</summary>
    public static bool IsXLabsKey(string key) => Processor().IsMatch(key);

    /// <summary>
    /// Parses an XLabs key (<see cref="IsXLabsKey"/>) into the kohya FLUX module it changes; throws <see cref="LoraException"/>
    /// naming the key when diffusers v0.31.0 could not load it. <paramref name="kohyaFile"/>: the file also holds kohya keys
    /// (<c>.lora_down.weight</c>), which makes diffusers read it as kohya's, never as XLabs'.
    /// </summary>
    public static LoraKey Parse(string file, string key, bool kohyaFile)
    {
        if (kohyaFile)
            throw new LoraException(file, key, "this XLabs FLUX key is in a file that also holds kohya keys (.lora_down.weight): diffusers v0.31.0 reads such a file as kohya's and cannot convert XLabs keys in it");
        var block = Processor().Match(key);
        var layer = Layer().Match(key[block.Length..]);
        if (!layer.Success)
            throw new LoraException(file, key, "not an XLabs FLUX LoRA key this engine knows: expected (diffusion_model.)double_blocks.N.processor. or single_blocks.N.processor. then qkv_lora1/qkv_lora2/proj_lora1/proj_lora2 and .down.weight or .up.weight (XLabs files carry no alpha)");
        var n = block.Groups[2].Value;
        var text = layer.Groups[2].Value == "2";
        var qkv = layer.Groups[1].Value == "qkv";
        string module;
        if (block.Groups[1].Value == "double")
            module = $"double_blocks_{n}_{(text ? "txt" : "img")}_attn_{(qkv ? "qkv" : "proj")}";
        else if (!qkv)
            module = $"single_blocks_{n}_linear2"; // diffusers maps both proj_lora1 and proj_lora2 to proj_out
        else
            // diffusers v0.31.0's converter names a single block's qkv_lora norm.linear (the block's modulation, whose shape
            // happens to match) but never stores it and then raises on the leftover key: it loads no such file, and applying
            // it to norm.linear would silently change the wrong weight.
            throw new LoraException(file, key, "an XLabs single-block qkv LoRA, which diffusers v0.31.0 cannot load (its converter leaves the key unconverted and fails): only single_blocks.N.processor.proj_lora1/proj_lora2 are applied");
        return new LoraKey("transformer", module, true, layer.Groups[3].Value == "down" ? LoraPart.Down : LoraPart.Up);
    }
}
