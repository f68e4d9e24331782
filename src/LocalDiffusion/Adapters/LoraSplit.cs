namespace LocalDiffusion.Adapters;

/// <summary>
/// Which weights of a model one LoRA layer changes. Mostly one: the module the key names. A kohya FLUX module that BFL
/// fuses (<c>img_attn_qkv</c>, <c>linear1</c>) changes several of diffusers' weights: each takes the down matrix whole and
/// its own consecutive rows of the up matrix (<see cref="FluxKohyaNames"/>; XLabs' keys are given kohya's names,
/// <see cref="FluxXLabsNames"/>).
/// </summary>
internal static class LoraSplit
{
    /// <summary>
    /// The weights <paramref name="layer"/> changes, each with the first up row it takes and how many (empty: none found),
    /// or a problem that names why the layer cannot be placed.
    /// </summary>
    public static (IReadOnlyList<(WeightTarget Target, int UpRow, long Rows)> Targets, string? Problem) Resolve(LoraFile file, LoraLayer layer,
        ModuleResolver resolver, int shared, string component, string modelPath, int? layersPerBlock)
    {
        var key = layer.Key;
        try
        {
            if (component == "transformer" && key.Underscored && FluxKohyaNames.IsFluxModule(key.Module))
            {
                if (FluxKohyaNames.Targets(key.Module) is not { } names)
                    return ([], $"FLUX module {key.Module} (kohya's name) has no diffusers counterpart (diffusers v0.31.0's converter maps double_blocks_N_img/txt_attn_qkv/_proj/_mlp_0/_mlp_2/_mod_lin and single_blocks_N_linear1/linear2/modulation_lin only)");
                if (names.Count > 1 && layer.Kind != LoraKind.LoRA)
                    return ([], $"a {layer.Kind} on the fused module {key.Module} cannot be split into {string.Join(", ", names)}");
                var found = new List<(WeightTarget, int, long)>();
                var row = 0;
                foreach (var name in names)
                {
                    if (resolver.Resolve(name, false, 0) is not { } target)
                        return ([], $"FLUX module {key.Module} (kohya's name) is diffusers' {name}, which is not a weight of this transformer ({modelPath}): the LoRA was made for another model");
                    found.Add((target, row, target.OutFeatures));
                    row += (int)target.OutFeatures;
                }
                return (found, null);
            }
            // kohya's SDXL LoRAs use SGM block names (input_blocks_4_1_…): mapped to diffusers' first.
            var one = key.Underscored && layersPerBlock is { } l && SgmNames.ToDiffusers(key.Module, l) is { } diffusers
                ? resolver.Resolve(diffusers, true, 0)
                : resolver.Resolve(key.Module, key.Underscored, shared);
            return one is null ? ([], null) : ([(one, 0, layer.Kind == LoraKind.LoRA ? layer.Up.Shape[0] : one.OutFeatures)], null);
        }
        catch (InvalidOperationException e)
        {
            throw new LoraException(file.Path, layer.Down.Name, $"module {key.Module} is ambiguous in this {component} ({modelPath}): {e.Message}");
        }
    }

    /// <summary>Why the up matrix's rows do not add up to the weights a fused module is split into; null when they do.</summary>
    public static string? RowsProblem(LoraLayer layer, IReadOnlyList<(WeightTarget Target, int UpRow, long Rows)> targets)
    {
        if (targets.Count < 2) return null;
        var total = targets.Sum(t => t.Rows);
        return layer.Up.Shape[0] == total ? null
            : $"up has {layer.Up.Shape[0]} rows, but the fused module's parts ({string.Join(", ", targets.Select(t => $"{t.Target.ModulePath} {t.Rows}"))}) have {total} outputs in this model: the LoRA was made for another model";
    }
}
