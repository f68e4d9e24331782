using System.Numerics.Tensors;
using LocalDiffusion.Denoising;
using LocalDiffusion.TextEncoder;
using LocalDiffusion.Tokenizer;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.PromptEncoding;

/// <summary>
/// Stage 1 for SDXL base, as diffusers' <c>StableDiffusionXLPipeline.encode_prompt</c> and <c>_get_add_time_ids</c> do
/// it: each prompt goes through both tokenizers and text encoders (77 tokens, longer prompts cut with a warning);
/// <c>encoder_hidden_states</c> is the penultimate hidden state of encoder 1 and of encoder 2 concatenated along the
/// feature axis; <c>text_embeds</c> is encoder 2's pooled projection; <c>time_ids</c> are (height, width, 0, 0, height,
/// width), diffusers' defaults (original size = target size = the image, no crop). With
/// <c>force_zeros_for_empty_prompt</c> an empty negative prompt conditions on zeros (embeddings and pooled).
/// A1111 attention weighting and chunking are not applied to SDXL yet: prompts are encoded as written, with a warning
/// when they use weighting syntax.
/// The refiner (no encoder 1: <paramref name="tokenizer1"/> and <paramref name="encoder1"/> null) conditions on encoder
/// 2's penultimate state alone and takes 5 time ids, as <c>StableDiffusionXLImg2ImgPipeline._get_add_time_ids</c> with
/// <c>requires_aesthetics_score</c>: (height, width, 0, 0, 6) for the prompt and (height, width, 0, 0, 2.5) for the
/// negative half, diffusers' default aesthetic_score and negative_aesthetic_score.
/// </summary>
internal sealed class SdxlPromptEncoder(ClipTokenizer? tokenizer1, ClipTextEncoder? encoder1, ClipTokenizer tokenizer2, ClipTextEncoder encoder2,
    string encoder2Path, bool forceZerosForEmptyPrompt)
{
    /// <summary>diffusers' StableDiffusionXLImg2ImgPipeline defaults.</summary>
    private const float AestheticScore = 6f, NegativeAestheticScore = 2.5f;

    private bool Refiner => encoder1 is null;

    /// <summary>The number of time ids the UNet takes: 6 for SDXL base, 5 for the refiner.</summary>
    public int TimeIdCount => Refiner ? 5 : 6;

    /// <summary>
    /// Encodes <paramref name="prompts"/> (with classifier-free guidance: negative, then prompt) into
    /// <paramref name="imagesPerPrompt"/> rows each, with the time ids of a <paramref name="height"/>×<paramref name="width"/> image.
    /// </summary>
    /// <exception cref="GenerationNumericsException">A text encoder returned NaN or infinity.</exception>
    public UNetInputs Encode(IReadOnlyList<string> prompts, int imagesPerPrompt, bool weighting, int height, int width,
        List<string> warnings, TimingRecorder timings, RunOptions runOptions)
    {
        var seq = encoder2.SequenceLength;
        // Rows the encoders run: every prompt except an empty negative one under force_zeros_for_empty_prompt.
        var encodedRow = new int[prompts.Count];
        var ids1 = new List<int>();
        var ids2 = new List<int>();
        var rows = 0;
        for (var p = 0; p < prompts.Count; p++)
        {
            var negative = p < prompts.Count - 1;
            if (negative && forceZerosForEmptyPrompt && prompts[p].Length == 0)
            {
                encodedRow[p] = -1;
                continue;
            }
            var name = negative ? "negative prompt" : "prompt";
            if (weighting && UsesWeightingSyntax(prompts[p]))
                warnings.Add($"The {name} uses attention/BREAK syntax, which is not applied to SDXL models yet: the text was encoded as written.");
            var first = tokenizer1?.Encode(prompts[p]);
            var second = tokenizer2.Encode(prompts[p]);
            if (Math.Max(first?.TruncatedTokens ?? 0, second.TruncatedTokens) is var dropped and > 0)
                warnings.Add($"The {name} is longer than {seq - 2} tokens: the last {dropped} token(s) were dropped.");
            if (first is not null) ids1.AddRange(first.Ids);
            ids2.AddRange(second.Ids);
            encodedRow[p] = rows++;
        }
        timings.TokenizeDone();

        // The prompt itself (the last) is always encoded, so rows ≥ 1.
        var (hidden1, width1, _) = encoder1?.EncodeForXl(ids1.ToArray(), rows, pooled: false, runOptions) ?? ([], 0, null);
        var (hidden2, width2, pooledOrNull) = encoder2.EncodeForXl(ids2.ToArray(), rows, pooled: true, runOptions);
        var pooled = pooledOrNull!;
        // (TensorPrimitives.IsFiniteAll is false for an empty span: the refiner has no encoder 1.)
        if ((hidden1.Length > 0 && !TensorPrimitives.IsFiniteAll<float>(hidden1)) || !TensorPrimitives.IsFiniteAll<float>(hidden2) || !TensorPrimitives.IsFiniteAll<float>(pooled))
            throw new GenerationNumericsException(NumericsStage.TextEncoder, null,
                $"an SDXL text encoder ({encoder2Path}{(Refiner ? "" : " or text_encoder/")}) returned NaN/infinity for the prompt: an fp16 encoder overflowing, or a broken export.");
        var pooledWidth = pooled.Length / rows;
        var hiddenSize = width1 + width2;

        var batch = prompts.Count * imagesPerPrompt;
        var states = new float[batch * seq * hiddenSize];
        var textEmbeds = new float[batch * pooledWidth];
        var count = TimeIdCount;
        var timeIds = new float[batch * count];
        for (var p = 0; p < prompts.Count; p++)
            for (var i = 0; i < imagesPerPrompt; i++)
            {
                var row = p * imagesPerPrompt + i;
                float[] ids = Refiner
                    ? [height, width, 0, 0, p < prompts.Count - 1 ? NegativeAestheticScore : AestheticScore]
                    : [height, width, 0, 0, height, width];
                ids.CopyTo(timeIds, row * count);
                if (encodedRow[p] is var e and >= 0)
                {
                    for (var t = 0; t < seq; t++)
                    {
                        var target = states.AsSpan((row * seq + t) * hiddenSize, hiddenSize);
                        hidden1.AsSpan((e * seq + t) * width1, width1).CopyTo(target);
                        hidden2.AsSpan((e * seq + t) * width2, width2).CopyTo(target[width1..]);
                    }
                    pooled.AsSpan(e * pooledWidth, pooledWidth).CopyTo(textEmbeds.AsSpan(row * pooledWidth));
                }
            }
        return new UNetInputs
        {
            EncoderHiddenStates = states, Batch = batch, SequenceLength = seq, HiddenSize = hiddenSize,
            TextEmbeds = textEmbeds, TimeIds = timeIds,
        };
    }

    private static bool UsesWeightingSyntax(string prompt)
    {
        try
        {
            return PromptAttention.Parse(prompt).Exists(r => r.Weight != 1.0);
        }
        catch (FormatException)
        {
            return true;
        }
    }
}
