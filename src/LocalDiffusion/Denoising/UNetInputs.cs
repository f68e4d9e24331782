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

    /// <summary>The per-row values given for an extra UNet input (by its ONNX name), or null.</summary>
    public float[]? Extra(string inputName) => inputName switch
    {
        "text_embeds" => TextEmbeds,
        "time_ids" => TimeIds,
        "timestep_cond" => TimestepCond,
        _ => null,
    };
}
