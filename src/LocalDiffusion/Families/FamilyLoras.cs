using LocalDiffusion.Adapters;
using LocalDiffusion.Model;

namespace LocalDiffusion.Families;

/// <summary>
/// What a flow-matching family checks of a request's LoRAs before any work: each file is read (its keys parsed, so an
/// unknown format is refused naming the key), and refused when it was made for another family (an SD 1.x/XL UNet LoRA,
/// a FLUX LoRA on SD 3) or changes the T5 encoder, whose LoRAs the engine does not map. Shapes and modules are checked
/// when the LoRA is merged (<see cref="LoraMerge"/>), also before the first step.
/// </summary>
internal static class FamilyLoras
{
    /// <summary>Throws <see cref="LoraException"/> naming the file and what it targets when one of <paramref name="loras"/> cannot go on <paramref name="model"/>.</summary>
    public static void Check(FlowFamilyModel model, ModelArchitecture architecture, IReadOnlyList<LoraAdapter> loras, bool skipUnmatched)
    {
        foreach (var lora in loras)
        {
            using var file = LoraFile.Open(lora.Path);
            if (model.T5Component is { } t5 && file.Layers.FirstOrDefault(l => l.Key.Component == t5) is { } t5Layer)
                throw new LoraForAnotherModelException(file.Path, t5Layer.Down.Name,
                    $"this LoRA changes {t5} ({model.Name}'s T5 encoder); LoRAs for T5 are not supported (only the transformer and the CLIP text encoders: {string.Join(", ", model.LoraComponents.Select(c => c.Name))})");
            if (skipUnmatched) continue; // as for SD 1.x/XL: layers that fit nothing are left out and noted instead
            var target = LoraTargets.Classify(file);
            if (!Fits(target, architecture))
            {
                var layer = file.Layers.FirstOrDefault(l => l.Key.Component is "unet" or "transformer") ?? file.Layers[0];
                throw new LoraForAnotherModelException(file.Path, layer.Down.Name, $"this LoRA targets {LoraTargets.Describe(target)}, not {model.Name}: use a LoRA made for {model.Name}");
            }
        }
    }

    /// <summary>
    /// Whether the LoRA file at <paramref name="path"/> can fit a model of <paramref name="architecture"/>, from its keys; a
    /// file that does not read as a LoRA counts as fitting (using it reports why it does not).
    /// </summary>
    public static bool FileFits(string path, ModelArchitecture architecture)
    {
        try
        {
            using var file = LoraFile.Open(path);
            return Fits(LoraTargets.Classify(file), architecture);
        }
        catch (Exception e) when (e is LoraException or IOException or UnauthorizedAccessException)
        {
            return true;
        }
    }

    /// <summary>Whether a LoRA of <paramref name="lora"/> can fit a model of <paramref name="architecture"/> (shapes aside).</summary>
    public static bool Fits(LoraBase lora, ModelArchitecture architecture) => lora switch
    {
        LoraBase.UNet => architecture is not (ModelArchitecture.StableDiffusion3 or ModelArchitecture.Flux),
        LoraBase.Flux => architecture == ModelArchitecture.Flux,
        LoraBase.StableDiffusion3 => architecture == ModelArchitecture.StableDiffusion3,
        LoraBase.Transformer => architecture is ModelArchitecture.StableDiffusion3 or ModelArchitecture.Flux,
        _ => true,
    };
}
