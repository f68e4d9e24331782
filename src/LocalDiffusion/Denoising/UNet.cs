using LocalDiffusion.Onnx;
using Microsoft.ML.OnnxRuntime;
using LocalDiffusion.Tensors;

namespace LocalDiffusion.Denoising;

/// <summary>
/// The denoising UNet: (sample [B,4,h,w], timestep, encoder_hidden_states [B,77,D], and what its family adds:
/// text_embeds, time_ids, timestep_cond) → noise prediction [B,4,h,w].
/// Runs the batch in as many calls as a static batch dimension requires.
/// </summary>
internal sealed class UNet : IDenoiser, IDisposable
{
    /// <summary>Latent channels of every Stable Diffusion 1.x/2.x UNet and VAE.</summary>
    public const int LatentChannels = 4;

    private readonly OnnxComponent _model;
    private readonly TensorSpec _sample;
    private readonly TensorSpec _timestep;
    private readonly TensorSpec _hidden;
    private readonly TensorSpec _output;
    private readonly TensorSpec[] _extras;
    private readonly TensorSpec[] _residuals;
    private readonly int[] _residualHalvings = [];

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
        // Which extra inputs a family needs is ModelFamily's decision; here only inputs nobody could provide are refused.
        // A ControlNet UNet also takes the residuals a ControlNet adds to its skip connections (zeros without one).
        _residuals = [.. ControlResiduals.Ordered(model.Inputs.Values, model.FilePath, "input")];
        var unknown = model.Inputs.Keys.Except(["sample", "timestep", "encoder_hidden_states", .. Model.ModelFamily.ConditioningInputs, .. _residuals.Select(r => r.Name)]).ToList();
        if (unknown.Count > 0)
            throw new ModelLoadException(model.FilePath, $"it has inputs this pipeline does not provide: {string.Join(", ", unknown)} (unknown variant).");
        _extras = Model.ModelFamily.ConditioningInputs.Where(model.Inputs.ContainsKey).Select(n => model.Inputs[n]).ToArray();
        foreach (var spec in _extras)
            if (spec.Rank != 2 || !OrtTensors.AcceptsFloats(spec.ElementType))
                throw new ModelLoadException(model.FilePath, $"input '{spec.Name}' is {spec.Describe()}; a float [batch, width] tensor was expected.");
        foreach (var spec in new[] { sample, timestep, hidden })
            if (!OrtTensors.AcceptsFloats(spec.ElementType))
                throw new ModelLoadException(model.FilePath, $"input '{spec.Name}' has element type {spec.ElementType}; Stable Diffusion UNets take float32/float16 (timestep also int64/int32).");
        _sample = sample;
        _timestep = timestep;
        _hidden = hidden;
        _output = model.OutputOrFirst("out_sample");
        OrtTensors.RequireFloatOutput(_output, model.FilePath);
        if (_residuals.Length > 0)
        {
            // Without a stride-2 scan, assume SD 1.x/2.x's four levels for 12 down residuals, SDXL's three for 9.
            var down = _residuals.Length - 1;
            var levels = DownsamplingLevels > 0 ? DownsamplingLevels + 1 : down == 12 ? 4 : down == 9 ? 3 : 1;
            _residualHalvings = ControlResiduals.Halvings(down, levels)
                ?? throw new ModelLoadException(model.FilePath,
                    $"it takes {down} down-block residuals over {levels} resolution levels, which is not a diffusers UNet's layout (1 + levels × resnets + levels − 1).");
        }
    }

    /// <summary>
    /// The ControlNet residual inputs, in slot order (down 0..n−1, then mid); empty for a UNet exported without them.
    /// </summary>
    public IReadOnlyList<TensorSpec> ResidualInputs => _residuals;

    /// <summary>How many times residual slot k is halved relative to the latents (see <see cref="ControlResiduals.Halvings"/>).</summary>
    public IReadOnlyList<int> ResidualHalvings => _residualHalvings;

    /// <summary>The [channels, height, width] of residual slot <paramref name="slot"/> at a latent size, channels from the declaration or <paramref name="channels"/>.</summary>
    internal long[] ResidualItemShape(int slot, int latentHeight, int latentWidth, int? channels = null)
    {
        var c = _residuals[slot].FixedDimension(1) ?? channels
            ?? throw new InvalidOperationException($"{FilePath}: residual input '{_residuals[slot].Name}' does not declare its channels; they come from a ControlNet, and this generation has none.");
        return [c, ControlResiduals.Halve(latentHeight, _residualHalvings[slot]), ControlResiduals.Halve(latentWidth, _residualHalvings[slot])];
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

    /// <summary>
    /// How the UNet's attention is spelled: fused into ONNX Runtime's kernels (tools/fuse_attention.py, Olive,
    /// ONNX Runtime's optimizer) or written out as Softmax blocks, which cost memory and time at large sizes.
    /// </summary>
    public string Attention => _model.Scan switch
    {
        null => "unknown",
        { FusedAttentionNodes: > 0 } scan => $"fused ({scan.FusedAttentionNodes} attention nodes)",
        { SoftmaxNodes: > 0 } scan when _model.FusedAttentionNodes > 0 =>
            $"fused by the engine when loading ({_model.FusedAttentionNodes} of {scan.SoftmaxNodes} Softmax blocks)",
        { SoftmaxNodes: > 0 } scan => $"unfused ({scan.SoftmaxNodes} Softmax blocks; the engine fuses them on the CPU and CUDA unless FuseAttention is off, as tools/fuse_attention.py does to a folder)",
        _ => "none found",
    };

    /// <summary>The batch size the model is fixed to, or null when dynamic.</summary>
    public long? FixedBatch => _sample.FixedDimension(0);

    /// <summary>Most rows one call takes when the batch is dynamic (<see cref="PipelineOptions.MaxUnetBatch"/>); null: all of them.</summary>
    public int? MaxRowsPerCall { get; set; }

    /// <summary>Latent height/width the model is fixed to, or null when dynamic.</summary>
    public (int Height, int Width)? FixedLatentSize =>
        _sample.FixedDimension(2) is { } h && _sample.FixedDimension(3) is { } w ? ((int)h, (int)w) : null;

    /// <summary>Hidden size of encoder_hidden_states when declared statically.</summary>
    public int? DeclaredHiddenSize => _hidden.FixedDimension(2) is { } d ? (int)d : null;

    /// <summary>The extra conditioning inputs (text_embeds, time_ids, timestep_cond) the model declares.</summary>
    public IReadOnlyList<TensorSpec> ExtraInputs => _extras;

    /// <summary>Prepares the conditioning of a generation once, as tensors reused at every step.</summary>
    /// <exception cref="InvalidOperationException">The model declares an input <paramref name="inputs"/> does not give.</exception>
    public Conditioning Prepare(UNetInputs inputs)
    {
        var chunks = BatchChunk.Plan(inputs.Batch, FixedBatch, MaxRowsPerCall);
        var values = new List<OrtValue[]>(chunks.Count);
        try
        {
            foreach (var chunk in chunks)
            {
                var run = new OrtValue[1 + _extras.Length];
                values.Add(run);
                run[0] = Gather(_hidden, inputs.EncoderHiddenStates, chunk, [inputs.SequenceLength, inputs.HiddenSize]);
                for (var e = 0; e < _extras.Length; e++)
                {
                    var given = inputs.Extra(_extras[e].Name)
                        ?? throw new InvalidOperationException($"{FilePath} takes '{_extras[e].Name}', which this generation did not prepare.");
                    run[1 + e] = Gather(_extras[e], given, chunk, [given.Length / inputs.Batch]);
                }
            }
        }
        catch
        {
            foreach (var run in values)
                foreach (var v in run) v?.Dispose();
            throw;
        }
        return new Conditioning(chunks, values) { Inputs = inputs };
    }

    private static OrtValue Gather(TensorSpec spec, float[] rows, BatchChunk chunk, long[] itemShape)
    {
        var item = TensorShape.ArrayLength(itemShape);
        var buffer = new float[chunk.RunBatch * item];
        chunk.Gather<float>(rows, item, buffer);
        return OrtTensors.FromFloats(spec, buffer, [chunk.RunBatch, .. itemShape]);
    }

    /// <summary>
    /// Predicts the noise [B,4,h,w] for <paramref name="sample"/> [B,<see cref="InputChannels"/>,h,w] at
    /// <paramref name="timestep"/>. The input, timestep and output tensors are the generation's own (in
    /// <paramref name="conditioning"/>), bound to the session once: a call writes into them and reads back, and
    /// allocates nothing.
    /// </summary>
    public void Predict(ReadOnlySpan<float> sample, int latentHeight, int latentWidth, float timestep,
        Conditioning conditioning, Span<float> output, RunOptions runOptions)
    {
        var start = System.Diagnostics.Stopwatch.GetTimestamp();
        long runTicks = 0;
        var inputItem = InputChannels * latentHeight * latentWidth;
        var item = LatentChannels * latentHeight * latentWidth;
        var bindings = conditioning.Bind(this, latentHeight, latentWidth);
        for (var c = 0; c < conditioning.Chunks.Count; c++)
        {
            var chunk = conditioning.Chunks[c];
            var run = bindings[c];
            // A static batch larger than the chunk is padded with its last item, as BatchChunk.Gather does.
            for (var i = 0; i < chunk.RunBatch; i++)
                run.Sample.Write(sample.Slice((chunk.Start + Math.Min(i, chunk.Count - 1)) * inputItem, inputItem), i * inputItem);
            run.Timestep.Fill(timestep);
            WriteResiduals(run, chunk, conditioning.ResidualRows, conditioning.Inputs.Batch);
            var runStart = System.Diagnostics.Stopwatch.GetTimestamp();
            run.Binding.Run(runOptions);
            runTicks += System.Diagnostics.Stopwatch.GetTimestamp() - runStart;
            run.Output.Read(0, output.Slice(chunk.Start * item, chunk.Count * item));
        }
        var callTicks = System.Diagnostics.Stopwatch.GetTimestamp() - start;
        foreach (var timings in conditioning.Timings) timings.UnetCall(callTicks, runTicks);
    }

    // Each chunk's rows of the generation's residuals (zeros when no ControlNet runs, or outside its guidance window).
    private static void WriteResiduals(RunBinding run, BatchChunk chunk, float[][] rows, int batch)
    {
        for (var k = 0; k < run.Residuals.Length; k++)
        {
            var item = rows[k].Length / batch;
            for (var i = 0; i < chunk.RunBatch; i++)
                run.Residuals[k].Write(rows[k].AsSpan((chunk.Start + Math.Min(i, chunk.Count - 1)) * item, item), i * item);
        }
    }

    // Exporters disagree on the timestep: int64 [B], float [B], int64 [1], or a float scalar; follow the declaration.
    private long[] TimestepShape(int batch) => _timestep.Rank == 0 ? [] : [_timestep.FixedDimension(0) ?? batch];

    private RunBinding CreateBinding(BatchChunk chunk, OrtValue[] conditioning, int h, int w, int?[]? residualChannels)
    {
        var tensors = new List<IDisposable>(4);
        try
        {
            var sample = HostTensor.Create(_sample.ElementType, [chunk.RunBatch, InputChannels, h, w], _sample.Name);
            tensors.Add(sample);
            var timestep = HostTensor.Create(_timestep.ElementType, TimestepShape(chunk.RunBatch), _timestep.Name);
            tensors.Add(timestep);
            var output = HostTensor.Create(_output.ElementType, [chunk.RunBatch, LatentChannels, h, w], _output.Name);
            tensors.Add(output);
            var binding = new StepBinding(_model);
            tensors.Add(binding);
            binding.BindInput(_sample.Name, sample);
            binding.BindInput(_timestep.Name, timestep);
            binding.BindConstant(_hidden.Name, conditioning[0]);
            for (var e = 0; e < _extras.Length; e++) binding.BindConstant(_extras[e].Name, conditioning[1 + e]);
            var residuals = new HostTensor[_residuals.Length];
            for (var k = 0; k < residuals.Length; k++)
            {
                residuals[k] = HostTensor.Create(_residuals[k].ElementType, [chunk.RunBatch, .. ResidualItemShape(k, h, w, residualChannels?[k])], _residuals[k].Name);
                tensors.Add(residuals[k]);
                binding.BindInput(_residuals[k].Name, residuals[k]);
            }
            binding.BindOutput(_output.Name, output.Value);
            return new RunBinding(sample, timestep, output, binding) { Residuals = residuals };
        }
        catch
        {
            foreach (var t in tensors) t.Dispose();
            throw;
        }
    }

    /// <summary>Holds the session open for a stage of several calls (see <see cref="OnnxComponent.Use"/>).</summary>
    public OnnxComponent.Lease Use() => _model.Use();

    int IDenoiser.LatentChannels => LatentChannels;

    IDenoiserConditioning IDenoiser.Prepare(UNetInputs inputs) => Prepare(inputs);

    void IDenoiser.Predict(ReadOnlyMemory<float> input, int latentHeight, int latentWidth, float timestep, IDenoiserConditioning conditioning,
        Span<float> output, RunOptions runOptions) => Predict(input.Span, latentHeight, latentWidth, timestep, (Conditioning)conditioning, output, runOptions);

    /// <summary>The component (for replacing its weights with LoRA-merged ones).</summary>
    internal OnnxComponent Component => _model;

    /// <summary>Whether the session is open now (see <see cref="PipelineOptions.LowMemory"/>).</summary>
    public bool IsLoaded => _model.IsLoaded;

    public void Dispose() => _model.Dispose();

    /// <summary>One ONNX Runtime call's tensors, bound to the session.</summary>
    internal sealed record RunBinding(HostTensor Sample, HostTensor Timestep, HostTensor Output, StepBinding Binding) : IDisposable
    {
        /// <summary>The ControlNet residual inputs, in slot order (none for a UNet without them).</summary>
        public HostTensor[] Residuals { get; init; } = [];

        public void Dispose()
        {
            Binding.Dispose();
            foreach (var r in Residuals) r.Dispose();
            Sample.Dispose();
            Timestep.Dispose();
            Output.Dispose();
        }
    }

    /// <summary>
    /// A generation's UNet tensors: the text conditioning per run, and the sample, timestep and output tensors bound
    /// with it (made at the first call, remade only if the latent size changes). Dispose after the generation.
    /// </summary>
    internal sealed class Conditioning(IReadOnlyList<BatchChunk> chunks, IReadOnlyList<OrtValue[]> values) : IDenoiserConditioning
    {
        private RunBinding[] _bindings = [];
        private (int H, int W) _size;

        public IReadOnlyList<BatchChunk> Chunks { get; } = chunks;

        /// <summary>Per run: encoder_hidden_states, then the model's extra inputs in <see cref="ExtraInputs"/> order.</summary>
        public IReadOnlyList<OrtValue[]> Values { get; } = values;

        /// <summary>What the tensors were made from (the inpainting channels are assembled from it at every step).</summary>
        public required UNetInputs Inputs { get; init; }

        /// <summary>Where the calls' times are recorded: each member's of a batch (the call is theirs together).</summary>
        public TimingRecorder[] Timings { get; set; } = [];

        /// <inheritdoc/>
        public int CallsPerEvaluation => Chunks.Count;

        /// <summary>
        /// Per residual slot of a ControlNet UNet, the rows of the whole batch ([Batch, c, h', w'] flattened), written by the
        /// ControlNets before each call; zeros without one. Made with the bindings.
        /// </summary>
        public float[][] ResidualRows { get; private set; } = [];

        /// <summary>Residual channels the UNet leaves symbolic, from the ControlNet (set before the first call).</summary>
        internal int?[]? ResidualChannels { get; set; }

        internal RunBinding[] Bind(UNet unet, int h, int w)
        {
            if (_bindings.Length == Chunks.Count && _size == (h, w)) return _bindings;
            DisposeBindings();
            var bindings = new RunBinding[Chunks.Count];
            try
            {
                ResidualRows = new float[unet._residuals.Length][];
                for (var k = 0; k < ResidualRows.Length; k++)
                    ResidualRows[k] = new float[TensorShape.ArrayLength([Inputs.Batch, .. unet.ResidualItemShape(k, h, w, ResidualChannels?[k])])];
                for (var c = 0; c < Chunks.Count; c++)
                    bindings[c] = unet.CreateBinding(Chunks[c], Values[c], h, w, ResidualChannels);
            }
            catch
            {
                foreach (var b in bindings) b?.Dispose();
                throw;
            }
            (_bindings, _size) = (bindings, (h, w));
            return _bindings;
        }

        private void DisposeBindings()
        {
            foreach (var b in _bindings) b.Dispose();
            _bindings = [];
        }

        public void Dispose()
        {
            DisposeBindings();
            foreach (var run in Values)
                foreach (var v in run) v.Dispose();
        }
    }
}
