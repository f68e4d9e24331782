using LocalDiffusion.Onnx;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Denoising;

/// <summary>
/// The denoising UNet: (sample [B,4,h,w], timestep, encoder_hidden_states [B,77,D]) → noise prediction [B,4,h,w].
/// Runs the batch in as many calls as a static batch dimension requires.
/// </summary>
internal sealed class UNet : IDisposable
{
    /// <summary>Latent channels of every Stable Diffusion 1.x/2.x UNet and VAE.</summary>
    public const int LatentChannels = 4;

    private readonly OnnxComponent _model;
    private readonly TensorSpec _sample;
    private readonly TensorSpec _timestep;
    private readonly TensorSpec _hidden;
    private readonly TensorSpec _output;

    /// <summary>Latent channels plus mask plus masked-image latents: the input of an inpainting UNet.</summary>
    public const int InpaintingChannels = 9;

    /// <param name="model">The session.</param>
    /// <param name="configChannels">unet/config.json's in_channels, for exports that leave the channel dimension symbolic.</param>
    public UNet(OnnxComponent model, int? configChannels = null)
    {
        _model = model;
        string Expected() =>
            $"this does not look like a Stable Diffusion UNet: expected inputs sample [batch,4,h,w], timestep, encoder_hidden_states [batch,77,dim]; found {model.DescribeInputs()}.";
        if (!model.Inputs.TryGetValue("sample", out var sample) || sample.Rank != 4
            || !model.Inputs.TryGetValue("timestep", out var timestep) || timestep.Rank > 1
            || !model.Inputs.TryGetValue("encoder_hidden_states", out var hidden) || hidden.Rank != 3)
            throw new ModelLoadException(model.FilePath, Expected());
        var channels = (int?)sample.FixedDimension(1) ?? configChannels ?? LatentChannels;
        // 9 channels is an inpainting UNet, which the pipeline feeds mask and masked-image latents; other counts
        // (e.g. 5 for depth-to-image) are models it cannot drive.
        if (channels is not (LatentChannels or InpaintingChannels))
            throw new ModelLoadException(model.FilePath,
                $"its sample input has {channels} channels; LocalDiffusion runs {LatentChannels}-channel UNets and {InpaintingChannels}-channel inpainting UNets (a {channels}-channel UNet is e.g. a depth model).");
        InputChannels = channels;
        var extra = model.Inputs.Keys.Except(["sample", "timestep", "encoder_hidden_states"]).ToList();
        if (extra.Count > 0)
            throw new ModelLoadException(model.FilePath, extra.Contains("text_embeds") || extra.Contains("time_ids")
                ? $"this is an SDXL UNet (inputs {string.Join(", ", extra)}); LocalDiffusion supports SD 1.x/2.x so far."
                : $"it has inputs this pipeline does not provide: {string.Join(", ", extra)} ({(extra.Contains("timestep_cond") ? "an LCM-distilled UNet" : "unknown variant")}).");
        foreach (var spec in new[] { sample, timestep, hidden })
            if (!OrtTensors.AcceptsFloats(spec.ElementType))
                throw new ModelLoadException(model.FilePath, $"input '{spec.Name}' has element type {spec.ElementType}; Stable Diffusion UNets take float32/float16 (timestep also int64/int32).");
        _sample = sample;
        _timestep = timestep;
        _hidden = hidden;
        _output = model.OutputOrFirst("out_sample");
        OrtTensors.RequireFloatOutput(_output, model.FilePath);
    }

    /// <summary>The model.onnx path.</summary>
    public string FilePath => _model.FilePath;

    public TensorSpec SampleSpec => _sample;

    /// <summary>Channels of the sample input: 4, or 9 for an inpainting UNet (latents ‖ mask ‖ masked-image latents).</summary>
    public int InputChannels { get; }

    public TensorSpec TimestepSpec => _timestep;

    public TensorSpec HiddenSpec => _hidden;

    /// <summary>
    /// How many times the UNet halves the latents (its stride-2 convolutions): ONNX exports trace the up-sampling with a
    /// fixed ×2, so latent sides must be multiples of 2^levels or a skip connection's Concat fails. 0 when unknown.
    /// </summary>
    public int DownsamplingLevels => _model.Scan?.StrideTwoConvolutions ?? 0;

    /// <summary>The batch size the model is fixed to, or null when dynamic.</summary>
    public long? FixedBatch => _sample.FixedDimension(0);

    /// <summary>Latent height/width the model is fixed to, or null when dynamic.</summary>
    public (int Height, int Width)? FixedLatentSize =>
        _sample.FixedDimension(2) is { } h && _sample.FixedDimension(3) is { } w ? ((int)h, (int)w) : null;

    /// <summary>Hidden size of encoder_hidden_states when declared statically.</summary>
    public int? DeclaredHiddenSize => _hidden.FixedDimension(2) is { } d ? (int)d : null;

    /// <summary>Prepares the text conditioning of a generation once, as tensors reused at every step.</summary>
    public Conditioning Prepare(float[] hiddenStates, int batch, int sequenceLength, int hiddenSize)
    {
        var chunks = BatchChunk.Plan(batch, FixedBatch);
        var item = sequenceLength * hiddenSize;
        var values = new List<OrtValue>(chunks.Count);
        try
        {
            foreach (var chunk in chunks)
            {
                var buffer = new float[chunk.RunBatch * item];
                chunk.Gather<float>(hiddenStates, item, buffer);
                values.Add(OrtTensors.FromFloats(_hidden, buffer, [chunk.RunBatch, sequenceLength, hiddenSize]));
            }
        }
        catch
        {
            foreach (var v in values) v.Dispose();
            throw;
        }
        return new Conditioning(chunks, values);
    }

    /// <summary>Predicts the noise [B,4,h,w] for <paramref name="sample"/> [B,<see cref="InputChannels"/>,h,w] at <paramref name="timestep"/>.</summary>
    public void Predict(ReadOnlySpan<float> sample, int latentHeight, int latentWidth, float timestep,
        Conditioning conditioning, Span<float> output, RunOptions runOptions)
    {
        var inputItem = InputChannels * latentHeight * latentWidth;
        var item = LatentChannels * latentHeight * latentWidth;
        for (var c = 0; c < conditioning.Chunks.Count; c++)
        {
            var chunk = conditioning.Chunks[c];
            using var sampleValue = GatherSample(sample, inputItem, chunk, latentHeight, latentWidth);
            using var timestepValue = TimestepTensor(timestep, chunk.RunBatch);
            using var outputs = _model.Run(runOptions,
                [_sample.Name, _timestep.Name, _hidden.Name], [sampleValue, timestepValue, conditioning.Values[c]], [_output.Name]);
            if (_output.ElementType == Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Float)
            {
                chunk.Scatter(outputs[0].GetTensorDataAsSpan<float>(), item, output);
            }
            else
            {
                var run = new float[chunk.RunBatch * item];
                OrtTensors.ReadFloats(outputs[0], run);
                chunk.Scatter(run, item, output);
            }
        }
    }

    private OrtValue GatherSample(ReadOnlySpan<float> sample, int item, BatchChunk chunk, int h, int w)
    {
        long[] shape = [chunk.RunBatch, InputChannels, h, w];
        if (chunk.Count == chunk.RunBatch)
            return OrtTensors.FromFloats(_sample, sample.Slice(chunk.Start * item, chunk.Count * item), shape);
        var padded = new float[chunk.RunBatch * item];
        chunk.Gather(sample, item, padded);
        return OrtTensors.FromFloats(_sample, padded, shape);
    }

    // Exporters disagree on the timestep: int64 [B], float [B], int64 [1], or a float scalar; follow the declaration.
    private OrtValue TimestepTensor(float timestep, int batch)
    {
        long[] shape = _timestep.Rank == 0 ? [] : [_timestep.FixedDimension(0) ?? batch];
        Span<float> values = stackalloc float[(int)OrtTensors.Count(shape)];
        values.Fill(timestep);
        return OrtTensors.FromFloats(_timestep, values, shape);
    }

    public void Dispose() => _model.Dispose();

    /// <summary>Text conditioning as per-run tensors; dispose after the generation.</summary>
    internal sealed class Conditioning(IReadOnlyList<BatchChunk> chunks, IReadOnlyList<OrtValue> values) : IDisposable
    {
        public IReadOnlyList<BatchChunk> Chunks { get; } = chunks;

        public IReadOnlyList<OrtValue> Values { get; } = values;

        public void Dispose()
        {
            foreach (var v in Values) v.Dispose();
        }
    }
}
