using System.Globalization;
using System.Numerics.Tensors;
using LocalDiffusion.Errors;

namespace LocalDiffusion.PromptEncoding;

/// <summary>
/// The check after attention weights are applied: a weight that is a finite float32 can still push the text encoder's
/// finite output past float32's range (e.g. <c>(word:3.4e38)</c>). That is the prompt's fault, so it is refused as a bad
/// prompt before any UNet work, instead of surfacing as NaN blamed on the UNet.
/// </summary>
internal static class WeightedConditioning
{
    /// <summary>Refuses <paramref name="chunk"/> (a weighted chunk of <paramref name="prompt"/>) when it is no longer finite.</summary>
    /// <exception cref="ArgumentException">The chunk holds NaN or infinity; ParamName is <c>Prompt</c> or <c>NegativePrompt</c>.</exception>
    public static void RequireFinite(ReadOnlySpan<float> chunk, string prompt, bool negative)
    {
        if (TensorPrimitives.IsFiniteAll(chunk)) return;
        var property = negative ? "NegativePrompt" : "Prompt";
        // Weighting only runs on prompts that parsed, so this parse succeeds; the largest weight is the likely culprit.
        var strongest = PromptAttention.Parse(prompt).Where(r => !r.IsBreak).MaxBy(r => Math.Abs(r.Weight));
        throw new InvalidRequestException(property, null, null, called => $"{called}: the attention weight {strongest.Weight.ToString("G4", CultureInfo.InvariantCulture)} on \"{PromptAttention.Quote(strongest.Text)}\" " +
            "makes the text conditioning overflow float32 (the text encoder's output was finite; weighted, it holds NaN/infinity); " +
            "use weights of a usual size, e.g. (word:1.3).");
    }
}
