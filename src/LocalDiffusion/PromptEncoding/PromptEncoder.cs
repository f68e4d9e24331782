using System.Numerics.Tensors;
using LocalDiffusion.Denoising;
using LocalDiffusion.TextEncoder;
using LocalDiffusion.Tokenizer;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.PromptEncoding;

/// <summary>
/// Stage 1 of a generation: the prompts → the UNet's text conditioning. Tokenizes each prompt, runs the text encoder
/// once for all of them, and repeats each prompt's hidden states for the images drawn from it.
/// </summary>
internal sealed class PromptEncoder(ClipTokenizer tokenizer, ClipTextEncoder textEncoder, string textEncoderPath)
{
    /// <summary>
    /// Encodes <paramref name="prompts"/> (diffusers' order with classifier-free guidance: negative, then prompt) into
    /// <paramref name="imagesPerPrompt"/> rows each. Truncation is reported in <paramref name="warnings"/>.
    /// </summary>
    /// <exception cref="GenerationNumericsException">The text encoder returned NaN or infinity.</exception>
    public UNetInputs Encode(IReadOnlyList<string> prompts, int imagesPerPrompt, List<string> warnings, TimingRecorder timings, RunOptions runOptions)
    {
        var seq = textEncoder.SequenceLength;
        var ids = new int[prompts.Count * seq];
        for (var p = 0; p < prompts.Count; p++)
        {
            var tokens = tokenizer.Encode(prompts[p]);
            if (tokens.TruncatedTokens > 0)
                warnings.Add($"The {(p == prompts.Count - 1 ? "prompt" : "negative prompt")} is longer than {seq - 2} tokens: " +
                    $"the last {tokens.TruncatedTokens} token(s) were dropped.");
            tokens.Ids.CopyTo(ids, p * seq);
        }
        timings.TokenizeDone();
        var (encoded, hidden) = textEncoder.Encode(ids, prompts.Count, runOptions);
        if (!TensorPrimitives.IsFiniteAll<float>(encoded))
            throw new GenerationNumericsException(NumericsStage.TextEncoder, null,
                $"the text encoder ({textEncoderPath}) returned NaN/infinity for the prompt: an fp16 encoder overflowing, or a broken export.");
        var rows = new float[prompts.Count * imagesPerPrompt * seq * hidden];
        for (var p = 0; p < prompts.Count; p++)
            for (var i = 0; i < imagesPerPrompt; i++)
                encoded.AsSpan(p * seq * hidden, seq * hidden).CopyTo(rows.AsSpan((p * imagesPerPrompt + i) * seq * hidden));
        return new UNetInputs { EncoderHiddenStates = rows, Batch = prompts.Count * imagesPerPrompt, SequenceLength = seq, HiddenSize = hidden };
    }
}
