using LocalDiffusion.Errors;

namespace LocalDiffusion.Denoising;

/// <summary>
/// Everything a generation feeds the UNet besides the latents and the timestep, in batch order (with classifier-free
/// guidance: the unconditional rows first). Each array holds <see cref="Batch"/> rows; which ones a model needs
/// follows from its family (<see cref="Model.ModelFamily"/>): SD 1.x/2.x only <see cref="EncoderHiddenStates"/>, SDXL
/// also <see cref="TextEmbeds"/> and <see cref="TimeIds"/>, LCM-distilled UNets <see cref="TimestepCond"/>, 9-channel
/// inpainting UNets <see cref="ExtraChannels"/>. The tensors are made once per generation by <see cref="UNet.Prepare"/>
/// and bound to the session, so the steps allocate nothing.
/// </summary>
internal sealed record UNetInputs
{
    /// <summary>encoder_hidden_states, [Batch, SequenceLength, HiddenSize] flattened.</summary>
    public required float[] EncoderHiddenStates { get; init; }

    /// <summary>Rows in every array.</summary>
    public required int Batch { get; init; }

    /// <summary>Tokens per row of <see cref="EncoderHiddenStates"/> (77, or a multiple of 77 for chunked prompts).</summary>
    public required int SequenceLength { get; init; }

    /// <summary>Width of <see cref="EncoderHiddenStates"/>.</summary>
    public required int HiddenSize { get; init; }

    /// <summary>SDXL's pooled text embedding <c>text_embeds</c>, [Batch, width], when the UNet takes it.</summary>
    public float[]? TextEmbeds { get; init; }

    /// <summary>SDXL's <c>time_ids</c> (original size, crop, target size or aesthetic score), [Batch, count].</summary>
    public float[]? TimeIds { get; init; }

    /// <summary>An LCM-distilled UNet's <c>timestep_cond</c> (the embedded guidance scale), [Batch, width].</summary>
    public float[]? TimestepCond { get; init; }

    /// <summary>A 9-channel inpainting UNet's mask and masked-image latents, assembled into the sample at every step.</summary>
    public InpaintChannels? ExtraChannels { get; init; }

    /// <summary>The guidance scale a guidance-distilled transformer takes as an input (FLUX.1-dev); null for the others.</summary>
    public float? EmbeddedGuidance { get; init; }

    /// <summary>
    /// The rows of several requests' inputs one after another (a denoising batch, each member's rows contiguous). They must
    /// agree on sequence length, width and which extra inputs they have; inpainting channels are per request, so such
    /// inputs are not concatenated.
    /// </summary>
    public static UNetInputs Concat(IReadOnlyList<UNetInputs> parts)
    {
        if (parts.Count == 1) return parts[0];
        var first = parts[0];
        foreach (var p in parts)
            if (p.SequenceLength != first.SequenceLength || p.HiddenSize != first.HiddenSize || p.ExtraChannels is not null
                || (p.TextEmbeds is null) != (first.TextEmbeds is null) || (p.TimeIds is null) != (first.TimeIds is null)
                || (p.TimestepCond is null) != (first.TimestepCond is null) || p.EmbeddedGuidance != first.EmbeddedGuidance)
                throw new InvalidRequestException(nameof(parts), null, null, "UNet inputs of one batch must have the same sequence length, width and extra inputs.");
        static float[]? Join(IReadOnlyList<UNetInputs> parts, Func<UNetInputs, float[]?> rows) =>
            rows(parts[0]) is null ? null : parts.SelectMany(p => rows(p)!).ToArray();
        return first with
        {
            EncoderHiddenStates = Join(parts, p => p.EncoderHiddenStates)!,
            Batch = parts.Sum(p => p.Batch),
            TextEmbeds = Join(parts, p => p.TextEmbeds),
            TimeIds = Join(parts, p => p.TimeIds),
            TimestepCond = Join(parts, p => p.TimestepCond),
        };
    }

    /// <summary>The per-row values given for an extra UNet input (by its ONNX name), or null.</summary>
    public float[]? Extra(string inputName) => inputName switch
    {
        "text_embeds" => TextEmbeds,
        "time_ids" => TimeIds,
        "timestep_cond" => TimestepCond,
        _ => null,
    };
}
