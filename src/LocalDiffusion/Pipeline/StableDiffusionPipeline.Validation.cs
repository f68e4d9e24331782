using LocalDiffusion.Denoising;
using LocalDiffusion.Latents;
using LocalDiffusion.Model;
using LocalDiffusion.PromptEncoding;
using LocalDiffusion.Schedulers;
using LocalDiffusion.Vae;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Pipeline;

/// <summary>Checking a request before any work: its values, its size, and the scheduler it asks for.</summary>
public sealed partial class StableDiffusionPipeline
{
    // Builds the request's scheduler and sets its timesteps before any work, so a config the scheduler cannot use or a
    // step count it cannot take is refused up front, naming the request field. Eta reaches DDIM and TCD as diffusers'
    // pipeline passes it to step: 0 unless the request sets it.
    private (IScheduler Scheduler, string Name) CreateScheduler(GenerationRequest request)
    {
        IScheduler scheduler;
        string name;
        var config = _schedulerConfig with { Eta = request.Eta ?? 0 };
        try
        {
            (scheduler, name) = request.Scheduler is null
                ? (_schedulers.CreateFromConfig(config), Info.Scheduler)
                : (_schedulers.Create(request.Scheduler, config), _schedulers.Describe(request.Scheduler).DisplayName);
        }
        catch (Exception e) when (e is NotSupportedException or InvalidDataException || (e is ArgumentException a && a.ParamName == "config"))
        {
            throw new InvalidRequestException(nameof(request.Scheduler), null, null, called => $"{called} '{request.Scheduler}' cannot run with this model's scheduler config " +
                $"({_folder.SchedulerConfigPath ?? "built-in SD 1.5 defaults"}): {e.Message}", e);
        }
        catch (InvalidRequestException e) when (e.ParamName == "eta")
        {
            throw new InvalidRequestException(nameof(request.Eta), request.Eta, null, e.Describe, e);
        }
        catch (ArgumentException e)
        {
            throw new InvalidRequestException(nameof(request.Scheduler), request.Scheduler, null, _ => e.Message, e);
        }
        // A flow-matching sampler follows a velocity field; this UNet predicts noise (or v), so its picture would be garbage.
        if (scheduler is IFlowMatchScheduler)
            throw new ModelIncompatibleException(nameof(request.Scheduler), Info.Root, called => $"{called} '{request.Scheduler}' is a flow-matching sampler, for SD 3 and FLUX; {Info.Family.Name} runs the diffusion samplers (euler, dpmpp_2m, …).");
        try
        {
            scheduler.SetTimesteps(request.StepCount);
        }
        catch (ArgumentException e)
        {
            throw new InvalidRequestException(nameof(request.Steps), request.Steps, null, called => $"{called} {request.Steps} with {name}: {e.Message}");
        }
        return (scheduler, name);
    }

    // A hand-off fraction that leaves the model no timestep to run is refused up front, naming the field.
    private void CheckSplit(GenerationRequest request, IScheduler scheduler, string name)
    {
        var train = TrainTimesteps;
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
        if (r.PromptWeighting)
        {
            PromptEncoder.Validate(r.Prompt, nameof(r.Prompt));
            PromptEncoder.Validate(r.NegativePrompt, nameof(r.NegativePrompt));
        }
        ImageRequestValidation.Check(r, _folder.VaeEncoderPath, Info.Family.Inpainting);
        CheckControlNets(r); // StableDiffusionPipeline.ControlNets.cs
        SdxlTimeIds.Validate(r, Info.Family.Name, sdxl: _sdxlPromptEncoder is not null, refiner: _sdxlPromptEncoder?.Refiner == true);
        // diffusers runs the refiner as StableDiffusionXLImg2ImgPipeline: it refines an image, it does not draw one.
        if (Info.Family.Architecture == ModelArchitecture.StableDiffusionXLRefiner && r.InitImage is null && r.InitLatents is null)
            throw new ModelIncompatibleException(nameof(r.InitImage), Info.Root, called => $"{called} is required: an SDXL refiner runs img2img (refining an image; Strength defaults to 0.3 as in diffusers) or continues a base model's latents (InitLatents), not text-to-image.");
        if (Info.Family.Architecture == ModelArchitecture.StableDiffusionXLRefiner && r.MaskImage is not null)
            throw new ModelIncompatibleException(nameof(r.MaskImage), Info.Root, called => $"{called} is not supported with an SDXL refiner yet: LocalDiffusion runs the refiner as img2img only.");
        // With an init image the size defaults to the image's own, rounded down to a size the UNet can draw.
        var (width, height) = ImageRequestValidation.OutputSize(r, Info.SizeMultiple, Info.NativeWidth, Info.NativeHeight);
        CheckSide(nameof(r.Width), width);
        CheckSide(nameof(r.Height), height);
        int latentH = height / VaeDecoder.Factor, latentW = width / VaeDecoder.Factor;
        foreach (var (fixedSize, file) in new[] { (_unet.FixedLatentSize, _folder.UnetPath), (_vae.Decoder.FixedLatentSize, _vae.Decoder.FilePath),
                     (_vae.Float32Fallback?.FixedLatentSize, _vae.Float32Fallback?.FilePath ?? "") })
        {
            if (fixedSize is { } s && (s.Height != latentH || s.Width != latentW))
                throw new ModelIncompatibleException(width != s.Width * 8 ? nameof(r.Width) : nameof(r.Height), file,
                    called => $"{called}: {file} has static latent dimensions {s.Height}x{s.Width}, so it only makes {s.Width * 8}x{s.Height * 8} images; {width}x{height} was requested.");
        }
        if (r.SeedPerImage && (r.InitialLatents is not null || r.InitLatents is not null || r.DenoisingStart is not null || r.DenoisingEnd is not null))
            throw new InvalidRequestException(nameof(r.SeedPerImage), null, null, called => $"{called} draws each image's noise from its own seed; it cannot be combined with InitialLatents, InitLatents or a base → refiner hand-off (DenoisingStart/DenoisingEnd), which bring or hand over latents for the whole batch.");
        if (r.InitLatents is { } start && start.Length != r.ImageCount * UNet.LatentChannels * latentH * latentW
            && start.Length != UNet.LatentChannels * latentH * latentW)
            throw new InvalidRequestException(nameof(r.InitLatents), null, null, called => $"{called} has {start.Length} values; [{r.ImageCount},{UNet.LatentChannels},{latentH},{latentW}] = {r.ImageCount * UNet.LatentChannels * latentH * latentW} (or one image's {UNet.LatentChannels * latentH * latentW}) are needed for {width}x{height}: set Width and Height to the size the latents were made at.");
        if (r.InitialLatents is { } latents)
        {
            if (latents.Length != r.ImageCount * UNet.LatentChannels * latentH * latentW)
                throw new InvalidRequestException(nameof(r.InitialLatents), null, null, called => $"{called} has {latents.Length} values; [{r.ImageCount},{UNet.LatentChannels},{latentH},{latentW}] = {r.ImageCount * UNet.LatentChannels * latentH * latentW} are needed for {r.ImageCount} image(s) of {width}x{height}.");
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
                    ? $" (this model's UNet halves the latents {_unet.DownsamplingLevels} times, so sides must be multiples of 8×{multiple / VaeDecoder.Factor}; e.g. {string.Join(" or ", SizeSuggestions(value, multiple))})."
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
