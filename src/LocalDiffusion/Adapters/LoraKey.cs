namespace LocalDiffusion.Adapters;

/// <summary>Which matrix of a LoRA pair a key holds.</summary>
internal enum LoraPart
{
    /// <summary>kohya <c>lora_down</c>, PEFT <c>lora_A</c>: [rank, in(, kh, kw)].</summary>
    Down,

    /// <summary>kohya <c>lora_up</c>, PEFT <c>lora_B</c>: [out, rank(, 1, 1)].</summary>
    Up,

    /// <summary>kohya <c>alpha</c>: a scalar; the scale is alpha / rank.</summary>
    Alpha,

    /// <summary>LyCORIS LoHa <c>hada_w1_a</c>: [out, r].</summary>
    HadaW1A,

    /// <summary>LyCORIS LoHa <c>hada_w1_b</c>: [r, in(, kh, kw)].</summary>
    HadaW1B,

    /// <summary>LyCORIS LoHa <c>hada_w2_a</c>: [out, r].</summary>
    HadaW2A,

    /// <summary>LyCORIS LoHa <c>hada_w2_b</c>: [r, in(, kh, kw)].</summary>
    HadaW2B,

    /// <summary>LyCORIS LoKr <c>lokr_w1</c>: the Kronecker product's first factor [a, c].</summary>
    LokrW1,

    /// <summary>LyCORIS LoKr <c>lokr_w1_a</c>: [a, r] (w1 = w1_a · w1_b).</summary>
    LokrW1A,

    /// <summary>LyCORIS LoKr <c>lokr_w1_b</c>: [r, c].</summary>
    LokrW1B,

    /// <summary>LyCORIS LoKr <c>lokr_w2</c>: the second factor [b, d(, kh, kw)].</summary>
    LokrW2,

    /// <summary>LyCORIS LoKr <c>lokr_w2_a</c>: [b, r] (w2 = w2_a · w2_b).</summary>
    LokrW2A,

    /// <summary>LyCORIS LoKr <c>lokr_w2_b</c>: [r, d(·kh·kw)].</summary>
    LokrW2B,
}

/// <summary>
/// One key of a LoRA file, split into the model component it targets, the module it changes and the part it holds.
/// kohya/A1111 keys (<c>lora_unet_down_blocks_0_…_to_q.lora_down.weight</c>) give the module with every '.' turned into
/// '_' (<see cref="Underscored"/>): it is resolved against the model's own module paths later. diffusers keys (PEFT
/// <c>unet.….to_q.lora_A.weight</c>, and the older <c>.lora.down.weight</c>, <c>processor.to_q_lora.down.weight</c>
/// and <c>lora_linear_layer</c> forms that diffusers v0.31.0 converts) give it dotted.
/// </summary>
/// <param name="Component">Model folder component: <c>unet</c>, <c>transformer</c> (SD 3, FLUX), <c>text_encoder</c>, <c>text_encoder_2</c> or <c>text_encoder_3</c>.</param>
/// <param name="Module">The module path (dotted, or underscored when <see cref="Underscored"/>).</param>
/// <param name="Underscored">Whether <see cref="Module"/> is kohya's underscore-joined form.</param>
/// <param name="Part">Down, up or alpha.</param>
internal sealed record LoraKey(string Component, string Module, bool Underscored, LoraPart Part)
{
    private static readonly (string Prefix, string Component)[] KohyaPrefixes =
        [("lora_unet_", "unet"), ("lora_te1_", "text_encoder"), ("lora_te2_", "text_encoder_2"), ("lora_te_", "text_encoder"), ("lora_transformer_", "transformer")];

    private static readonly (string Prefix, string Component)[] DiffusersPrefixes =
        [("unet.", "unet"), ("transformer.", "transformer"), ("text_encoder_2.", "text_encoder_2"), ("text_encoder_3.", "text_encoder_3"), ("text_encoder.", "text_encoder")];

    // LyCORIS and other adapter kinds a LoRA merge cannot apply: their key suffix names the format.
    private static readonly (string Marker, string Format)[] Refused =
    [
        ("hada_t1", "LyCORIS LoHa with a CP-decomposed (Tucker) conv (hada_t1/hada_t2)"), ("hada_t2", "LyCORIS LoHa with a CP-decomposed (Tucker) conv (hada_t1/hada_t2)"),
        ("lokr_t1", "LyCORIS LoKr with a CP-decomposed (Tucker) conv (lokr_t2)"), ("lokr_t2", "LyCORIS LoKr with a CP-decomposed (Tucker) conv (lokr_t2)"), ("lora_mid", "LyCORIS LoCon with a CP-decomposed middle (lora_mid)"),
        ("dora_scale", "DoRA (dora_scale)"), ("lora_magnitude_vector", "DoRA (lora_magnitude_vector)"),
        ("oft_", "OFT"), ("diff", "a full weight difference (LyCORIS diff)"), ("on_input", "LyCORIS IA3 (on_input)"),
        ("bundle_emb", "embedded textual inversion (bundle_emb)"),
    ];

    /// <summary>
    /// Parses <paramref name="key"/>; throws <see cref="LoraException"/> naming it when it is not a LoRA key this engine
    /// applies. <paramref name="kohyaFile"/>: some key of the file has <c>.lora_down.weight</c>, which makes diffusers
    /// v0.31.0 read the file as kohya's (and not XLabs').
    /// </summary>
    public static LoraKey Parse(string file, string key, bool kohyaFile = false)
    {
        // Markers name a whole dot-separated part (or its start, up to '_'), so module names cannot trigger one.
        var parts = key.Split('.');
        foreach (var (marker, format) in Refused)
            if (parts.Skip(1).Any(p => p == marker || p.StartsWith(marker.EndsWith('_') ? marker : marker + "_", StringComparison.Ordinal)))
                throw new LoraException(file, key, $"this is {format}, which the engine does not apply (it merges LoRA/LoCon: lora_down/lora_up, lora_A/lora_B, and LyCORIS LoHa/LoKr without Tucker factors)");
        foreach (var (prefix, component) in KohyaPrefixes)
            if (key.StartsWith(prefix, StringComparison.Ordinal))
            {
                var dot = key.IndexOf('.', StringComparison.Ordinal);
                if (dot < 0) break;
                var module = key[prefix.Length..dot];
                LoraPart? part = key[(dot + 1)..] switch
                {
                    "lora_down.weight" => LoraPart.Down,
                    "lora_up.weight" => LoraPart.Up,
                    "alpha" => LoraPart.Alpha,
                    // LyCORIS keys carry no ".weight".
                    "hada_w1_a" => LoraPart.HadaW1A,
                    "hada_w1_b" => LoraPart.HadaW1B,
                    "hada_w2_a" => LoraPart.HadaW2A,
                    "hada_w2_b" => LoraPart.HadaW2B,
                    "lokr_w1" => LoraPart.LokrW1,
                    "lokr_w1_a" => LoraPart.LokrW1A,
                    "lokr_w1_b" => LoraPart.LokrW1B,
                    "lokr_w2" => LoraPart.LokrW2,
                    "lokr_w2_a" => LoraPart.LokrW2A,
                    "lokr_w2_b" => LoraPart.LokrW2B,
                    _ => null,
                };
                // kohya's FLUX LoRAs keep lora_unet_ for FLUX's own block names (double_blocks_0_img_attn_qkv): the transformer's.
                var target = component == "unet" && FluxKohyaNames.IsFluxModule(module) ? "transformer" : component;
                if (part is { } p && module.Length > 0) return new LoraKey(target, module, true, p);
                break;
            }
        if (key.StartsWith("lora_", StringComparison.Ordinal))
            throw new LoraException(file, key, "not a kohya LoRA key this engine knows: expected lora_unet_/lora_te_/lora_te1_/lora_te2_/lora_transformer_<module>.lora_down.weight, .lora_up.weight or .alpha");
        if (FluxXLabsNames.IsXLabsKey(key)) return FluxXLabsNames.Parse(file, key, kohyaFile);
        if (FluxKohyaNames.RefusedFormat(key) is { } fluxFormat)
            throw new LoraException(file, key, $"this is {fluxFormat}, which the engine does not apply: use a diffusers/PEFT (transformer.….lora_A.weight) or kohya (lora_unet_double_blocks_…) FLUX LoRA");
        return ParseDiffusers(file, key);
    }

    private static LoraKey ParseDiffusers(string file, string key)
    {
        var component = "unet"; // diffusers' oldest attention-processor files have no component prefix
        var rest = key;
        foreach (var (prefix, c) in DiffusersPrefixes)
            if (key.StartsWith(prefix, StringComparison.Ordinal))
            {
                component = c;
                rest = key[prefix.Length..];
                break;
            }
        LoraPart part;
        string module;
        if (Strip(rest, ".lora_A.weight", out module)) part = LoraPart.Down;
        else if (Strip(rest, ".lora_B.weight", out module)) part = LoraPart.Up;
        else if (Strip(rest, ".lora.down.weight", out module) || Strip(rest, ".lora_linear_layer.down.weight", out module)) part = LoraPart.Down;
        else if (Strip(rest, ".lora.up.weight", out module) || Strip(rest, ".lora_linear_layer.up.weight", out module)) part = LoraPart.Up;
        else if (Strip(rest, "_lora.down.weight", out module)) { part = LoraPart.Down; module = OldAttention(module, component); }
        else if (Strip(rest, "_lora.up.weight", out module)) { part = LoraPart.Up; module = OldAttention(module, component); }
        else if (Strip(rest, ".alpha", out module)) part = LoraPart.Alpha;
        else
            throw new LoraException(file, key, "not a LoRA key this engine knows: expected kohya (lora_unet_…/lora_te_….lora_down.weight, .lora_up.weight, .alpha) or diffusers/PEFT (unet.…/transformer.…/text_encoder.….lora_A.weight / .lora_B.weight, .lora.down.weight / .lora.up.weight)");
        // diffusers' attention processors sit between the attention module and its projections.
        module = module.Replace(".processor.", ".", StringComparison.Ordinal);
        if (module.EndsWith(".processor", StringComparison.Ordinal)) module = module[..^".processor".Length];
        if (module.Length == 0) throw new LoraException(file, key, "the key names no module");
        return new LoraKey(component, module, false, part);
    }

    // diffusers' old attention-processor LoRAs: to_q_lora … to_out_lora on the UNet's to_q … to_out.0, and (text encoder)
    // on CLIP's q_proj … out_proj (diffusers' DIFFUSERS_OLD_TO_PEFT mapping).
    private static string OldAttention(string module, string component)
    {
        var dot = module.LastIndexOf('.');
        var (parent, leaf) = dot < 0 ? ("", module) : (module[..(dot + 1)], module[(dot + 1)..]);
        var text = component.StartsWith("text_encoder", StringComparison.Ordinal);
        var mapped = leaf switch
        {
            "to_q" => text ? "q_proj" : "to_q",
            "to_k" => text ? "k_proj" : "to_k",
            "to_v" => text ? "v_proj" : "to_v",
            "to_out" => text ? "out_proj" : "to_out.0",
            _ => leaf,
        };
        return parent + mapped;
    }

    private static bool Strip(string s, string suffix, out string rest)
    {
        rest = s.EndsWith(suffix, StringComparison.Ordinal) ? s[..^suffix.Length] : "";
        return rest.Length > 0 || s == suffix;
    }
}
