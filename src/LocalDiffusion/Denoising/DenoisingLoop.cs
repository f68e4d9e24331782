using System.Diagnostics;
using System.Globalization;
using System.Numerics.Tensors;
using Microsoft.ML.OnnxRuntime;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Denoising;

/// <summary>
/// The scheduler loop over one or more requests denoised together (a generation is a batch of one member): at each
/// evaluation every member's scheduler scales its latents into its rows of one UNet batch — with classifier-free
/// guidance [uncond×n, cond×n] per member, members one after another — the UNet runs once on all rows, and each member
/// combines uncond + g·(cond − uncond) with its own scale and lets its own scheduler step. Latents are updated in place.
/// After every stage a member's values are checked for NaN/infinity, so a failure names the step and the stage where it
/// began; a member that fails or is cancelled leaves (its rows stay in the batch, unused) and the others go on.
/// </summary>
internal sealed class DenoisingLoop
{
    private readonly IDenoiser _denoiser;
    private readonly DenoisingMember[] _members;
    private readonly bool _classifierFree;
    private readonly int _beginIndex;
    private readonly int _endIndex;
    private readonly IReadOnlyList<float> _timesteps;

    /// <param name="denoiser">The UNet or transformer.</param>
    /// <param name="members">The requests; their schedulers must share one timestep sequence (the UNet takes one timestep per call).</param>
    /// <param name="classifierFree">With CFG (decided by <see cref="Model.ModelFamily.UsesClassifierFreeGuidance"/>) each member has 2n
    /// conditioning rows, unconditional first; otherwise n conditional rows.</param>
    /// <param name="beginIndex">img2img's first step.</param>
    /// <param name="endIndex">The step to stop before: a base model handing over to a refiner stops early (see
    /// <see cref="ScheduleSplit"/>); null: the schedule's end.</param>
    public DenoisingLoop(IDenoiser denoiser, IReadOnlyList<DenoisingMember> members, bool classifierFree, int beginIndex = 0, int? endIndex = null)
    {
        _denoiser = denoiser;
        _members = [.. members];
        _classifierFree = classifierFree;
        _beginIndex = beginIndex;
        _timesteps = _members[0].Scheduler.Timesteps;
        _endIndex = endIndex ?? _timesteps.Count;
        foreach (var m in _members)
            if (!m.Scheduler.Timesteps.SequenceEqual(_timesteps))
                throw new InvalidRequestException(nameof(members), null, null, $"The {nameof(members)} of one denoising batch must share their timesteps.");
    }

    /// <summary>The request's ControlNets, which fill the UNet's residual inputs before each call (null: none; a ControlNet UNet then gets zeros).</summary>
    public IUNetResiduals? Control { get; init; }

    /// <summary>UNet evaluations made.</summary>
    public int Evaluations { get; private set; }

    /// <summary>ONNX Runtime UNet calls made (more than evaluations when a static batch splits the CFG pair).</summary>
    public int Calls { get; private set; }

    /// <summary>
    /// Denoises every member's latents. The conditioning holds the members' rows in member order. A 9-channel UNet's
    /// extra channels come from the conditioning's inputs (a batch of one). Returns when every member has finished or
    /// left; a member's failure is in its <see cref="DenoisingMember.Error"/>. An ONNX Runtime failure (or a terminated
    /// call) throws for all.
    /// </summary>
    public void Run(int latentHeight, int latentWidth, IDenoiserConditioning conditioning, RunOptions runOptions)
    {
        var extraChannels = conditioning.Inputs.ExtraChannels;
        var channels = _denoiser.LatentChannels;
        var item = channels * latentHeight * latentWidth;
        var rowsPerImage = _classifierFree ? 2 : 1;
        var images = 0;
        foreach (var m in _members) images += m.Images;
        var batch = rowsPerImage * images;
        var scaled = new float[batch * item];
        // An inpainting UNet takes [scaled latents ‖ mask ‖ masked-image latents] per row.
        var input = extraChannels is null ? scaled : new float[batch * item / channels * _denoiser.InputChannels];
        var prediction = new float[scaled.Length];
        var guided = _classifierFree ? new float[images * item] : prediction;
        var total = _endIndex - _beginIndex;
        // Non-finite conditioning comes from the prompt encoding, not the UNet: say so before any UNet work.
        if (NonFiniteConditioning(conditioning.Inputs) is { } what)
        {
            foreach (var m in _members)
                if (m.Active)
                    m.Retire(new GenerationNumericsException(NumericsStage.Conditioning, null,
                        $"the text conditioning ({what}) holds NaN/infinity before the first UNet step: the prompt encoding stage produced it " +
                        "(attention weights too large, or a text encoder overflowing)."));
            return;
        }
        for (var i = _beginIndex; i < _endIndex; i++)
        {
            var active = 0;
            for (int k = 0, row = 0; k < _members.Length; row += rowsPerImage * _members[k].Images, k++)
            {
                var m = _members[k];
                if (!m.Active) continue;
                if (m.CancellationToken.IsCancellationRequested)
                {
                    m.Retire(new OperationCanceledException(m.CancellationToken));
                    continue;
                }
                if (m.FinishEarly.IsCancellationRequested)
                {
                    m.StopEarly();
                    continue;
                }
                active++;
                var size = m.Latents.Length;
                var rows = scaled.AsSpan(row * item, rowsPerImage * size);
                m.Scheduler.ScaleModelInput(m.Latents, rows[..size], i);
                if (_classifierFree) rows[..size].CopyTo(rows[size..]);
            }
            if (active == 0) return;
            extraChannels?.Assemble(scaled, input, batch);
            Control?.Apply(i, scaled, _timesteps[i], runOptions);
            _denoiser.Predict(input, latentHeight, latentWidth, _timesteps[i], conditioning, prediction, runOptions);
            Calls += conditioning.CallsPerEvaluation;
            Evaluations++;
            for (int k = 0, row = 0, image = 0; k < _members.Length; row += rowsPerImage * _members[k].Images, image += _members[k].Images, k++)
            {
                var m = _members[k];
                if (!m.Active) continue;
                try
                {
                    Step(m, i, prediction.AsSpan(row * item, rowsPerImage * m.Latents.Length), input.AsSpan(row * item / channels * _denoiser.InputChannels,
                        rowsPerImage * m.Latents.Length / channels * _denoiser.InputChannels), guided.AsSpan(image * item, m.Latents.Length));
                    m.OnEvaluation?.Invoke(i + 1 - _beginIndex, total);
                }
                catch (Exception e)
                {
                    m.Retire(e);
                }
            }
        }
        Debug.Assert(_members.All(m => !m.Active || m.Evaluations == total));
    }

    // One member's guidance, scheduler step and inpainting blend on its own slice of the batch.
    private void Step(DenoisingMember m, int i, Span<float> prediction, ReadOnlySpan<float> input, Span<float> guided)
    {
        m.Evaluations++;
        var size = m.Latents.Length;
        if (!TensorPrimitives.IsFiniteAll<float>(prediction))
            throw Failure(m, NumericsStage.Unet, i,
                TensorPrimitives.IsFiniteAll<float>(input)
                    ? $"the denoiser ({_denoiser.FilePath}) returned NaN/infinity from finite inputs (latents and text conditioning): an fp16 model overflowing, or a broken export."
                    : $"the {m.SchedulerName} scheduler's scaled model input was not finite.");
        if (_classifierFree)
        {
            ReadOnlySpan<float> uncond = prediction[..size], cond = prediction.Slice(size, size);
            TensorPrimitives.Subtract(cond, uncond, guided);
            TensorPrimitives.MultiplyAdd(guided, m.Guidance, uncond, guided);
            if (!TensorPrimitives.IsFiniteAll<float>(guided))
                throw Failure(m, NumericsStage.Guidance, i,
                    $"classifier-free guidance at scale {m.Guidance.ToString(CultureInfo.InvariantCulture)} overflowed although the UNet's predictions were finite; use a smaller guidance scale.");
        }
        else
        {
            guided = prediction;
        }
        m.Scheduler.Step(guided, i, m.Latents, m.Generator);
        if (!TensorPrimitives.IsFiniteAll<float>(m.Latents))
            throw Failure(m, NumericsStage.Scheduler, i,
                $"the {m.SchedulerName} scheduler turned finite latents and a finite noise prediction into NaN/infinity " +
                "(a division by a zero step, or a scheduler_config.json value out of its useful range).");
        m.Blend?.AfterStep(i, m.Latents);
    }

    private static string? NonFiniteConditioning(UNetInputs inputs) =>
        !Finite(inputs.EncoderHiddenStates) ? "encoder_hidden_states"
        : !Finite(inputs.TextEmbeds) ? "text_embeds"
        : !Finite(inputs.TimeIds) ? "time_ids"
        : !Finite(inputs.TimestepCond) ? "timestep_cond"
        : null;

    // (TensorPrimitives.IsFiniteAll is false for an empty span.)
    private static bool Finite(float[]? values) => values is null || values.Length == 0 || TensorPrimitives.IsFiniteAll<float>(values);

    private GenerationNumericsException Failure(DenoisingMember m, NumericsStage stage, int index, string cause) =>
        new(stage, index + 1,
            $"NaN/infinity at denoising step {index + 1} of {_timesteps.Count} (timestep {_timesteps[index].ToString(CultureInfo.InvariantCulture)}, {m.SchedulerName}): {cause}");
}
