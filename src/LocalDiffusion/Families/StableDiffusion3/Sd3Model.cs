using LocalDiffusion.Model;
using LocalDiffusion.Onnx;
using LocalDiffusion.PromptEncoding;
using LocalDiffusion.Schedulers;
using LocalDiffusion.TextEncoder;
using LocalDiffusion.Tokenizer;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Families.StableDiffusion3;

/// <summary>
/// SD 3's conditioner and denoiser adapter, as diffusers' StableDiffusion3Pipeline (v0.31.0) does them:
/// <list type="bullet">
/// <item>conditioning: each CLIP's penultimate hidden state (hidden_states[-2]), the two concatenated on the feature axis
/// (768 + 1280), zero-padded to T5's width and followed on the sequence axis by T5's last hidden state (max_sequence_length
/// tokens; zeros without text_encoder_3, as diffusers gives); pooled = the two CLIPs' projections concatenated;</item>
/// <item>denoiser: transformer(hidden_states [B,16,h,w], timestep t = σ·1000, encoder_hidden_states, pooled_projections) →
/// the velocity, guided by a [negative, prompt] CFG batch.</item>
/// </list>
/// With prompt weighting, each encoder's states (CLIP-L's and CLIP-G's penultimate, T5's last) get A1111's emphasis on
/// their own (<see cref="FlowEmphasis"/>); the pooled projections are the markup-free prompt's, unweighted.
/// </summary>
internal sealed class Sd3Model(ClipTextEncoder clipL, ClipTokenizer tokenizerL, ClipTextEncoder clipG, ClipTokenizer tokenizerG,
    T5TextEncoder? t5, T5Tokenizer? t5Tokenizer, OnnxComponent transformer, int jointAttentionWidth) : FlowFamilyModel
{
    public override string Name => "SD 3";

    public override GuidanceMode Guidance => GuidanceMode.ClassifierFree;

    public override FamilyConditioning Encode(IReadOnlyList<FlowPrompt> prompts, int maxSequenceLength, RunOptions runOptions)
    {
        var rows = prompts.Count;
        // Each encoder's penultimate states are weighted on their own (their own mean restored) before they are joined.
        var (idsL, weightsL) = FlowEmphasis.ClipRows(tokenizerL, prompts, EmbeddingsFor("text_encoder"));
        var (idsG, weightsG) = FlowEmphasis.ClipRows(tokenizerG, prompts, EmbeddingsFor("text_encoder_2"));
        var (statesL, widthL, pooledL) = clipL.EncodeForXl(idsL, rows, pooled: true, runOptions);
        var (statesG, widthG, pooledG) = clipG.EncodeForXl(idsG, rows, pooled: true, runOptions);
        int clipLength = tokenizerL.MaxLength, width = jointAttentionWidth;
        FlowEmphasis.Apply(statesL, clipLength, widthL, weightsL, prompts);
        FlowEmphasis.Apply(statesG, tokenizerG.MaxLength, widthG, weightsG, prompts);
        float[]? t5States = null;
        if (t5 is not null)
        {
            var (idsT5, weightsT5) = FlowEmphasis.T5Rows(t5Tokenizer!, prompts, maxSequenceLength);
            (t5States, var t5Width) = t5.Encode(idsT5, rows, maxSequenceLength, runOptions);
            width = t5Width;
            FlowEmphasis.Apply(t5States, maxSequenceLength, width, weightsT5, prompts);
        }
        if (widthL + widthG > width)
            throw new ModelLoadException(transformer.FilePath, $"the CLIP encoders' states are {widthL} + {widthG} wide, more than the transformer's {width}: the components come from different models.");
        var length = clipLength + maxSequenceLength;
        var hidden = new float[rows * length * width];
        for (var r = 0; r < rows; r++)
        {
            for (var k = 0; k < clipLength; k++)
            {
                var at = (r * length + k) * width;
                statesL.AsSpan((r * clipLength + k) * widthL, widthL).CopyTo(hidden.AsSpan(at));
                statesG.AsSpan((r * clipLength + k) * widthG, widthG).CopyTo(hidden.AsSpan(at + widthL));
            }
            t5States?.AsSpan(r * maxSequenceLength * width, maxSequenceLength * width).CopyTo(hidden.AsSpan((r * length + clipLength) * width));
        }
        int pooledWidthL = pooledL!.Length / rows, pooledWidthG = pooledG!.Length / rows;
        var pooled = new float[rows * (pooledWidthL + pooledWidthG)];
        for (var r = 0; r < rows; r++)
        {
            pooledL.AsSpan(r * pooledWidthL, pooledWidthL).CopyTo(pooled.AsSpan(r * (pooledWidthL + pooledWidthG)));
            pooledG.AsSpan(r * pooledWidthG, pooledWidthG).CopyTo(pooled.AsSpan(r * (pooledWidthL + pooledWidthG) + pooledWidthL));
        }
        return new FamilyConditioning(hidden, length, width, pooled, pooledWidthL + pooledWidthG, rows);
    }

    public override void Predict(ReadOnlyMemory<float> latents, int rows, int latentHeight, int latentWidth, float timestep, float guidance,
        FamilyConditioning conditioning, Span<float> output, RunOptions runOptions)
    {
        var timesteps = new float[rows];
        Array.Fill(timesteps, timestep);
        TransformerCall.Run(transformer, runOptions,
        [
            ("hidden_states", latents, [rows, Latents.Channels, latentHeight, latentWidth]),
            ("timestep", timesteps, [rows]),
            ("encoder_hidden_states", conditioning.Hidden, [rows, conditioning.SequenceLength, conditioning.Width]),
            ("pooled_projections", conditioning.Pooled, [rows, conditioning.PooledWidth]),
        ], output, conditioning);
    }

    public override void SetTimesteps(IFlowMatchScheduler scheduler, int steps, int latentHeight, int latentWidth) =>
        // SD 3's configs shift statically; one that asks for dynamic shifting gets μ from the patch count, as later diffusers do.
        scheduler.SetTimesteps(steps, scheduler.UseDynamicShifting && scheduler is FlowMatchEulerDiscreteScheduler euler
            ? euler.MuFor(latentHeight / 2 * (latentWidth / 2)) : null);
}
