using LocalDiffusion.Errors;
using System.Numerics.Tensors;
using LocalDiffusion.Denoising;
using LocalDiffusion.Onnx;
using Microsoft.ML.OnnxRuntime;
using LocalDiffusion.Tensors;

namespace LocalDiffusion.ControlNet;

/// <summary>
/// A generation's ControlNets at work: before each UNet call, every unit whose guidance window holds the step runs on the
/// step's scaled latents, timestep and text conditioning with its control image, and the units' residuals, each times
/// its scale, are summed into the UNet's residual rows (diffusers' StableDiffusionControlNetPipeline with
/// MultiControlNetModel). In guess mode with classifier-free guidance the ControlNets see only the conditional rows and
/// the unconditional rows get zeros; guess mode also weights down residual j by 10^(−1 + j/n) (n down residuals; the mid
/// one by 1), as ControlNetModel does. The tensors are bound once; a step allocates nothing.
/// </summary>
internal sealed class ControlGuidance : IUNetResiduals, IDisposable
{
    private readonly Unit[] _units;
    private readonly int[] _rows;
    private readonly UNet.Conditioning _conditioning;
    private readonly float[] _guessWeights;
    private readonly int _begin;
    private readonly int _count;

    /// <param name="units">The units with their control images [3, H, W] in [0, 1] at the output size.</param>
    /// <param name="unet">The ControlNet UNet whose residual inputs the units fill.</param>
    /// <param name="conditioning">The generation's UNet tensors (its residual rows are bound here).</param>
    /// <param name="rows">The UNet batch rows the ControlNets compute (all, or the conditional ones in guess mode with CFG).</param>
    /// <param name="guessMode">Whether guess mode's per-residual weights apply.</param>
    /// <param name="begin">The loop's first evaluation index (img2img starts later); the guidance window counts from it.</param>
    /// <param name="count">The evaluation indices in the schedule, the window's denominator (diffusers' len(timesteps)).</param>
    /// <param name="latentH">Latent height.</param>
    /// <param name="latentW">Latent width.</param>
    public ControlGuidance(IReadOnlyList<(ControlNetModel Model, ControlNetUnit Unit, float[] Image)> units, UNet unet, UNet.Conditioning conditioning,
        int[] rows, bool guessMode, int begin, int count, int latentH, int latentW)
    {
        _rows = rows;
        _conditioning = conditioning;
        _begin = begin;
        _count = count - begin;
        var residuals = unet.ResidualInputs.Count;
        _guessWeights = new float[residuals];
        for (var j = 0; j < residuals; j++)
            _guessWeights[j] = !guessMode ? 1f : j == residuals - 1 ? 1f : MathF.Pow(10f, -1f + (float)j / (residuals - 1));
        // Residual channels the UNet leaves symbolic come from the (first) ControlNet.
        conditioning.ResidualChannels = [.. Enumerable.Range(0, residuals).Select(k => (int?)units[0].Model.Residuals[k].FixedDimension(1))];
        conditioning.Bind(unet, latentH, latentW);
        var made = new List<Unit>();
        try
        {
            foreach (var (model, unit, image) in units)
                made.Add(new Unit(model, unit, image, unet, conditioning, rows, latentH, latentW));
        }
        catch
        {
            foreach (var u in made) u.Dispose();
            throw;
        }
        _units = [.. made];
    }

    /// <summary>
    /// Fills the conditioning's residual rows for evaluation <paramref name="index"/> from the UNet's scaled input rows
    /// <paramref name="scaled"/> ([batch, 4, h, w]).
    /// </summary>
    public void Apply(int index, ReadOnlySpan<float> scaled, float timestep, RunOptions runOptions)
    {
        var residuals = _conditioning.ResidualRows;
        foreach (var rows in residuals) Array.Clear(rows);
        var batch = _conditioning.Inputs.Batch;
        // diffusers' keep: off while i/N < start or (i+1)/N > end. The fractions are rounded to float as the settings are,
        // so that an end of 0.7 keeps step 7 of 10 as Python's 0.7 does (0.7f is below the double 0.7).
        double at = index - _begin, n = _count;
        float from = (float)(at / n), to = (float)((at + 1) / n);
        foreach (var u in _units)
        {
            if (from < u.Settings.GuidanceStart || to > u.Settings.GuidanceEnd || u.Settings.Scale == 0) continue;
            u.Run(scaled, timestep, _rows, runOptions);
            for (var k = 0; k < residuals.Length; k++)
            {
                var item = residuals[k].Length / batch;
                var weight = u.Settings.Scale * _guessWeights[k];
                for (var r = 0; r < _rows.Length; r++)
                {
                    var target = residuals[k].AsSpan(_rows[r] * item, item);
                    var output = u.Scratch[k].AsSpan(0, item);
                    u.Outputs[k].Read(r * item, output);
                    // Said here, naming the ControlNet: in the UNet's output it would look like the UNet's fault.
                    if (!TensorPrimitives.IsFiniteAll<float>(output))
                        throw new GenerationNumericsException(NumericsStage.ControlNet, index + 1,
                            $"NaN/infinity at denoising step {index + 1}: ControlNet {u.FilePath} returned it in '{u.OutputName(k)}' from finite latents (an fp16 ControlNet overflowing, or a broken export).");
                    TensorPrimitives.MultiplyAdd(output, weight, target, target);
                }
            }
        }
    }

    public void Dispose()
    {
        foreach (var u in _units) u.Dispose();
    }

    // One unit's ControlNet call: its tensors, bound once (the text conditioning and control image written once).
    private sealed class Unit : IDisposable
    {
        private readonly ControlNetModel _model;
        private readonly HostTensor _sample;
        private readonly HostTensor _timestep;
        private readonly List<IDisposable> _owned = [];
        private readonly StepBinding _binding;
        private readonly int _sampleItem;

        public Unit(ControlNetModel model, ControlNetUnit settings, float[] image, UNet unet, UNet.Conditioning conditioning, int[] rows, int h, int w)
        {
            _model = model;
            Settings = settings;
            var n = rows.Length;
            if (model.Sample.FixedDimension(0) is { } fixedBatch && fixedBatch != n)
                throw new ModelLoadException(model.FilePath, $"its batch is fixed to {fixedBatch}, but this generation runs it on {n} rows; export it with a dynamic batch.");
            var inputs = conditioning.Inputs;
            _sampleItem = UNet.LatentChannels * h * w;
            try
            {
                Own(model.Component.Use()); // the session stays open while its tensors are bound
                _sample = Own(HostTensor.Create(model.Sample.ElementType, [n, UNet.LatentChannels, h, w], model.Sample.Name));
                _timestep = Own(HostTensor.Create(model.Timestep.ElementType, model.Timestep.Rank == 0 ? [] : [model.Timestep.FixedDimension(0) ?? n], model.Timestep.Name));
                var hidden = Own(HostTensor.Create(model.Hidden.ElementType, [n, inputs.SequenceLength, inputs.HiddenSize], model.Hidden.Name));
                var hiddenItem = inputs.SequenceLength * inputs.HiddenSize;
                for (var r = 0; r < n; r++) hidden.Write(inputs.EncoderHiddenStates.AsSpan(rows[r] * hiddenItem, hiddenItem), r * hiddenItem);
                foreach (var spec in model.Added)
                {
                    // SDXL: the rows of the UNet's own text_embeds / time_ids.
                    var rowsOf = inputs.Extra(spec.Name) ?? throw new InvalidOperationException($"{model.FilePath} takes '{spec.Name}', which this generation did not prepare.");
                    var width = rowsOf.Length / inputs.Batch;
                    var added = Own(HostTensor.Create(spec.ElementType, [n, width], spec.Name));
                    for (var r = 0; r < n; r++) added.Write(rowsOf.AsSpan(rows[r] * width, width), r * width);
                    AddedInputs.Add(added);
                }
                var cond = Own(HostTensor.Create(model.Cond.ElementType, [n, 3, h * Vae.VaeDecoder.Factor, w * Vae.VaeDecoder.Factor], model.Cond.Name));
                for (var r = 0; r < n; r++) cond.Write(image, r * image.Length);
                _binding = Own(new StepBinding(model.Component));
                _binding.BindInput(model.Sample.Name, _sample);
                _binding.BindInput(model.Timestep.Name, _timestep);
                _binding.BindInput(model.Hidden.Name, hidden);
                _binding.BindInput(model.Cond.Name, cond);
                for (var a = 0; a < model.Added.Count; a++) _binding.BindInput(model.Added[a].Name, AddedInputs[a]);
                if (model.Scale is { } scaleSpec)
                {
                    // The scale is applied here (per unit and window), so the network runs at 1.
                    var scale = Own(HostTensor.Create(scaleSpec.ElementType, scaleSpec.Rank == 0 ? [] : [1], scaleSpec.Name));
                    scale.Fill(1f);
                    _binding.BindInput(scaleSpec.Name, scale);
                }
                Outputs = new HostTensor[model.Residuals.Count];
                Scratch = new float[model.Residuals.Count][];
                for (var k = 0; k < Outputs.Length; k++)
                {
                    var shape = unet.ResidualItemShape(k, h, w, conditioning.ResidualChannels?[k]);
                    Outputs[k] = Own(HostTensor.Create(model.Residuals[k].ElementType, [n, .. shape], model.Residuals[k].Name));
                    Scratch[k] = new float[TensorShape.ArrayLength(shape)];
                    _binding.BindOutput(model.Residuals[k].Name, Outputs[k].Value);
                }
            }
            catch
            {
                Dispose();
                throw;
            }
        }

        public ControlNetUnit Settings { get; }

        public string FilePath => _model.FilePath;

        public string OutputName(int slot) => _model.Residuals[slot].Name;

        public HostTensor[] Outputs { get; } = [];

        private List<HostTensor> AddedInputs { get; } = [];

        public float[][] Scratch { get; } = [];

        private T Own<T>(T value) where T : IDisposable
        {
            _owned.Add(value);
            return value;
        }

        public void Run(ReadOnlySpan<float> scaled, float timestep, int[] rows, RunOptions runOptions)
        {
            for (var r = 0; r < rows.Length; r++)
                _sample.Write(scaled.Slice(rows[r] * _sampleItem, _sampleItem), r * _sampleItem);
            _timestep.Fill(timestep);
            try
            {
                _binding.Run(runOptions);
            }
            catch (OnnxRuntimeException e) when (!runOptions.Terminate)
            {
                throw new ModelLoadException(_model.FilePath, $"the ControlNet failed: {e.Message.Trim()} (its residual shapes must match the UNet's at this size).", e);
            }
        }

        public void Dispose()
        {
            for (var i = _owned.Count - 1; i >= 0; i--) _owned[i].Dispose();
            _owned.Clear();
        }
    }
}
