namespace LocalDiffusion.Adapters;

/// <summary>Which kind of model a LoRA file was made for, as far as its keys tell.</summary>
internal enum LoraBase
{
    /// <summary>An SD 1.x/2.x/XL UNet (<c>unet.</c>, <c>lora_unet_</c> keys in UNet names).</summary>
    UNet,

    /// <summary>A FLUX.1 transformer: single-stream blocks, FLUX's embedders, or kohya's FLUX names.</summary>
    Flux,

    /// <summary>An SD 3 transformer: its patch embedding (<c>pos_embed</c>) or SD 3.5's second attention (<c>attn2</c>).</summary>
    StableDiffusion3,

    /// <summary>A transformer whose keys fit SD 3 and FLUX alike (joint-attention blocks only).</summary>
    Transformer,

    /// <summary>Text encoders only: the keys do not tell the family.</summary>
    TextEncoders,
}

/// <summary>Tells from a LoRA's keys which family it targets, to refuse one for another family by name and to list only fitting ones.</summary>
internal static class LoraTargets
{
    private static readonly string[] FluxMarkers = ["single_transformer_blocks", "x_embedder", "guidance_embedder"];
    private static readonly string[] Sd3Markers = ["pos_embed", "attn2"];

    /// <summary>What <paramref name="file"/>'s layers change.</summary>
    public static LoraBase Classify(LoraFile file)
    {
        var transformer = false;
        var sd3 = false;
        foreach (var layer in file.Layers)
        {
            var key = layer.Key;
            if (key.Component == "unet") return LoraBase.UNet;
            if (key.Component != "transformer") continue;
            transformer = true;
            if ((key.Underscored && FluxKohyaNames.IsFluxModule(key.Module)) || FluxMarkers.Any(m => key.Module.Contains(m, StringComparison.Ordinal)))
                return LoraBase.Flux;
            sd3 |= Sd3Markers.Any(m => key.Module.Contains(m, StringComparison.Ordinal));
        }
        return sd3 ? LoraBase.StableDiffusion3 : transformer ? LoraBase.Transformer : LoraBase.TextEncoders;
    }

    /// <summary>Words for what a LoRA of <paramref name="lora"/> changes, for messages.</summary>
    public static string Describe(LoraBase lora) => lora switch
    {
        LoraBase.UNet => "an SD 1.x/2.x/XL UNet (its keys change unet modules)",
        LoraBase.Flux => "a FLUX.1 transformer",
        LoraBase.StableDiffusion3 => "an SD 3 transformer",
        LoraBase.Transformer => "an SD 3 or FLUX.1 transformer",
        _ => "text encoders only",
    };
}
