using LocalDiffusion.Families;
using LocalDiffusion.Denoising;
using LocalDiffusion.Model;
using LocalDiffusion.Schedulers;
using LocalDiffusion.Vae;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Pipeline;

/// <summary>
/// Checking a request before any work: the family's defaults filled in, its LoRAs resolved, its values, its size and the
/// scheduler it asks for, each refusal naming the field.
/// </summary>
internal sealed class RunPreparation(FamilyModel model, SchedulerRegistry schedulers, PipelineOptions options, LoraSwitch loras, ControlNetSet controlNets)
{
    private const int MaxSide = RequestLimits.MaxSide;

    private ModelInfo Info => model.Info;

    /// <summary>The request with what it leaves unset taken from the model's family.</summary>
    public GenerationRequest WithDefaults(GenerationRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return request.Steps is not null && request.GuidanceScale is not null ? request
            : request with { Steps = request.Steps ?? Info.Family.DefaultSteps, GuidanceScale = request.GuidanceScale ?? Info.Family.DefaultGuidanceScale };
    }

    // A request checked and ready to run: everything that can be refused is refused here, before any work.
    internal sealed record PreparedRun(GenerationRequest Request, (IScheduler Scheduler, string Name) Scheduler, int LatentH, int LatentW);

    public PreparedRun Prepare(GenerationRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        loras.CheckTaken(request);
        request = model.WithFamilyDefaults(loras.Resolve(WithDefaults(request)));
        var (latentH, latentW) = Validate(request);
        model.CheckLoras(request.Loras ?? [], options.SkipUnmatchedLoraLayers);
        var scheduler = CreateScheduler(request, latentH, latentW);
        if (model.SplitsSchedules) CheckSplit(request, scheduler.Scheduler, scheduler.Name);
        if (request.InitImage is not null)
            _ = model.OpenEncoder(); // a broken vae_encoder is reported before any work
        return new PreparedRun(request, scheduler, latentH, latentW);
    }


    // Builds the request's scheduler and sets its timesteps before any work, so a config the scheduler cannot use or a
    // step count it cannot take is refused up front, naming the request field. Eta reaches DDIM and TCD as diffusers'
    // pipeline passes it to step: 0 unless the request sets it.
    public (IScheduler Scheduler, string Name) CreateScheduler(GenerationRequest request, int latentH, int latentW)
    {
        IScheduler scheduler;
        string name;
        var config = model.SchedulerConfig with { Eta = request.Eta ?? 0 };
        try
        {
            (scheduler, name) = request.Scheduler is null
                ? (schedulers.CreateFromConfig(config), Info.Scheduler)
                : (schedulers.Create(request.Scheduler, config), schedulers.Describe(request.Scheduler).DisplayName);
        }
        catch (Exception e) when (e is NotSupportedException or InvalidDataException || (e is ArgumentException a && a.ParamName == "config"))
        {
            throw new InvalidRequestException(nameof(request.Scheduler), null, null, called => $"{called} '{request.Scheduler}' cannot run with this model's scheduler config " +
                $"({SchedulerConfigFile ?? "built-in SD 1.5 defaults"}): {e.Message}", e);
        }
        catch (InvalidRequestException e) when (e.ParamName == "eta")
        {
            throw new InvalidRequestException(nameof(request.Eta), request.Eta, null, e.Describe, e);
        }
        catch (ArgumentException e)
        {
            throw new InvalidRequestException(nameof(request.Scheduler), request.Scheduler, null, _ => e.Message, e);
        }
        model.CheckScheduler(scheduler, request);
        try
        {
            model.SetTimesteps(scheduler, request.StepCount, latentH, latentW);
        }
        catch (ArgumentException e)
        {
            throw new InvalidRequestException(nameof(request.Steps), request.Steps, null, called => $"{called} {request.Steps} with {name}: {e.Message}");
        }
        return (scheduler, name);
    }

    private string? SchedulerConfigFile => Path.Combine(Info.Root, "scheduler", "scheduler_config.json") is var path && File.Exists(path) ? path : null;

    // A hand-off fraction that leaves the model no timestep to run is refused up front, naming the field.
    private void CheckSplit(GenerationRequest request, IScheduler scheduler, string name)
    {
        var train = model.TrainTimesteps;
        var count = scheduler.Timesteps.Count;
        var begin = request.DenoisingStart is { } start ? ScheduleSplit.StartIndex(scheduler, start, train)
            : request.InitImage is not null || request.InitLatents is not null ? StrengthSchedule.BeginIndex(request.StepCount, request.EffectiveStrength, scheduler.Order).BeginIndex
            : 0;
        var end = request.DenoisingEnd is { } stop ? ScheduleSplit.EndIndex(scheduler, stop, train) : count;
        if (end > begin) return;
        var first = scheduler.Timesteps[Math.Min(begin, count - 1)].ToString(System.Globalization.CultureInfo.InvariantCulture);
        var field = request.DenoisingEnd is not null ? nameof(request.DenoisingEnd) : nameof(request.DenoisingStart);
        var value = request.DenoisingEnd ?? request.DenoisingStart;
        throw new InvalidRequestException(field, value, null, called => $"{called} {value?.ToString(System.Globalization.CultureInfo.InvariantCulture)} leaves no step to run: {name} with {request.Steps} steps has timesteps " +
            $"{scheduler.Timesteps[0].ToString(System.Globalization.CultureInfo.InvariantCulture)} … {scheduler.Timesteps[count - 1].ToString(System.Globalization.CultureInfo.InvariantCulture)}, " +
            $"and the split falls at timestep {ScheduleSplit.Cutoff(value ?? 0, train)}{(begin > 0 ? $" (the run would start at {first})" : "")}; move the fraction or raise Steps.");
    }

    // The name users know for the config's class (its plain form, e.g. "PNDM"), validating the class on load.
    private (int LatentH, int LatentW) Validate(GenerationRequest r)
    {
        RequestLimits.Check(r);
        model.Validate(r);
        controlNets.Check(r);
        if (!model.SplitsSchedules && (r.DenoisingStart is not null || r.DenoisingEnd is not null))
            throw new ModelIncompatibleException(r.DenoisingStart is not null ? nameof(r.DenoisingStart) : nameof(r.DenoisingEnd), Info.Family.Name,
                called => $"{called}: the SDXL base → refiner hand-off (DenoisingStart/DenoisingEnd) is not supported with {Info.Family.Name}.");
        ImageRequestValidation.Check(r, model.EncoderPath, Info.Family.Inpainting, model.StepsLeft);
        // With an init image the size defaults to the image's own, rounded down to a size the UNet can draw.
        var (width, height) = ImageRequestValidation.OutputSize(r, Info.SizeMultiple, Info.NativeWidth, Info.NativeHeight);
        CheckSide(nameof(r.Width), width);
        CheckSide(nameof(r.Height), height);
        int latentH = height / VaeDecoder.Factor, latentW = width / VaeDecoder.Factor, channels = model.Latents.Channels;
        model.CheckSize(r, width, height);
        if (r.SeedPerImage && (r.InitialLatents is not null || r.InitLatents is not null || r.DenoisingStart is not null || r.DenoisingEnd is not null))
            throw new InvalidRequestException(nameof(r.SeedPerImage), null, null, called => $"{called} draws each image's noise from its own seed; it cannot be combined with InitialLatents, InitLatents or a base → refiner hand-off (DenoisingStart/DenoisingEnd), which bring or hand over latents for the whole batch.");
        if (r.InitLatents is { } start && start.Length != r.ImageCount * channels * latentH * latentW
            && start.Length != channels * latentH * latentW)
            throw new InvalidRequestException(nameof(r.InitLatents), null, null, called => $"{called} has {start.Length} values; [{r.ImageCount},{channels},{latentH},{latentW}] = {r.ImageCount * channels * latentH * latentW} (or one image's {channels * latentH * latentW}) are needed for {width}x{height}: set Width and Height to the size the latents were made at.");
        if (r.InitialLatents is { } latents)
        {
            if (latents.Length != r.ImageCount * channels * latentH * latentW)
                throw new InvalidRequestException(nameof(r.InitialLatents), null, null, called => $"{called} has {latents.Length} values; [{r.ImageCount},{channels},{latentH},{latentW}] = {r.ImageCount * channels * latentH * latentW} are needed for {r.ImageCount} image(s) of {width}x{height}.");
            if (!System.Numerics.Tensors.TensorPrimitives.IsFiniteAll<float>(latents))
                throw new InvalidRequestException(nameof(r.InitialLatents), null, null, called => $"{called} contains NaN or infinity; unit Gaussian noise was expected.");
        }
        return (latentH, latentW);
    }

    private void CheckSide(string name, int value)
    {
        var multiple = Info.SizeMultiple;
        if (value < multiple || value > MaxSide || value % multiple != 0)
            throw new InvalidRequestException(name, value, null, called => $"{called} is {value}; it must be a multiple of {multiple} between {multiple} and {MaxSide} pixels" +
                (multiple > VaeDecoder.Factor
                    ? $" ({model.SizeMultipleReason}; e.g. {string.Join(" or ", SizeSuggestions(value, multiple))})."
                    : "."));
    }

    // The allowed sides nearest to value: computed in long (int.MaxValue rounded up overflowed to a negative size) and
    // kept within [multiple, MaxSide], so that every size suggested is one that would be accepted.
    internal static IEnumerable<long> SizeSuggestions(int value, int multiple)
    {
        long largest = MaxSide / multiple * multiple;
        long below = Math.Clamp((long)value / multiple * multiple, multiple, largest);
        long above = Math.Clamp(((long)value / multiple + 1) * multiple, multiple, largest);
        return below == above ? [below] : [below, above];
    }
}
