using LocalDiffusion.Families;
using LocalDiffusion.Model;
using LocalDiffusion.Onnx;
using LocalDiffusion.Schedulers;
using LocalDiffusion.Errors;

namespace LocalDiffusion;

/// <summary>
/// Families that plug in as adapters (<see cref="FamilyRegistry"/>: SD 3, FLUX): a folder one of them claims is opened by
/// it and run by the family-neutral <see cref="FamilyPipeline"/>; this class is then only the public face every front-end
/// already uses. (SD 1.x/2.x/XL still run on this class's own stages; moving them behind the same seam is the rest of the work.)
/// </summary>
public sealed partial class StableDiffusionPipeline
{
    private readonly FamilyPipeline? _family;

    private StableDiffusionPipeline(FamilyPipeline family, ModelInfo info)
    {
        _family = family;
        Info = info;
        // The SD 1.x/2.x/XL stages are not used by an adapter family.
        (_folder, _textEncoder, _promptEncoder, _unet, _vae, _vaeEncoder, _schedulerConfig, _schedulers) = (null!, null!, null!, null!, null!, null!, null!, null!);
    }

    private static StableDiffusionPipeline? TryLoadFamily(string modelDirectory, PipelineOptions options, ExecutionDevice device)
    {
        var folder = FamilyFolder.Open(modelDirectory);
        if (FamilyRegistry.Claim(folder) is not { } family) return null;
        var sessions = new SessionFactory(device, options.IntraOpThreads, options.InterOpThreads)
        {
            Cache = options.UseModelCache ? new ModelCache(options.CacheDirectory ?? ModelCache.DefaultDirectory) : null,
            Options = options,
        };
        MemoryPreflight.Check(folder, ["transformer", "text_encoder", "text_encoder_2", "text_encoder_3", "vae_decoder"], options.LowMemory, sessions.Active);
        var opened = new List<OnnxComponent>();
        try
        {
            if (options.Embeddings.Count > 0)
                throw new ModelIncompatibleException(nameof(options.Embeddings), family.Name,
                    _ => $"PipelineOptions.Embeddings (textual inversion) are not supported with {family.Name} models yet (only SD 1.x/2.x/XL).");
            var model = family.Open(folder, sessions, options, opened);
            foreach (var component in opened) component.ReleaseWhenIdle = options.LowMemory;
            var schedulers = options.Schedulers ?? SchedulerRegistry.Default;
            var name = Path.GetFileName(folder.Root.TrimEnd(Path.DirectorySeparatorChar));
            var info = new ModelInfo
            {
                Root = folder.Root,
                PipelineClass = folder.PipelineClass,
                Device = sessions.Active.ToString(),
                DeviceNotes = sessions.Notes.ToList(),
                Components = model.Components.Select(c => new ComponentInfo(c.Name, c.FilePath, c.Inputs.Values.ToList(), c.Outputs.Values.ToList()) { Cache = c.CacheStatus }).ToList(),
                Scheduler = schedulers.Describe(model.SchedulerConfig.ClassName ?? "flow_euler").DisplayName,
                SizeMultiple = model.SizeMultiple,
                NativeWidth = model.Defaults.Width,
                NativeHeight = model.Defaults.Height,
                VaeScalingFactor = model.Latents.ScalingFactor,
                VaeDecoderPath = model.Decoder.FilePath,
                VaeDecoderPrecision = model.Decoder.Precision,
                VaeDecoderKind = model.Decoder.Kind,
                PreviewDecoderPath = (model.PreviewDecoder ?? model.Decoder).FilePath,
                PreviewDecoderKind = (model.PreviewDecoder ?? model.Decoder).Kind,
                TokenizerVocabularySize = model.TokenizerVocabularySize,
                UnetAttention = "as exported",
                Family = new ModelFamily
                {
                    Architecture = model.Guidance == GuidanceMode.ClassifierFree ? ModelArchitecture.StableDiffusion3 : ModelArchitecture.Flux,
                    Guidance = model.Guidance,
                    VariantName = model.Name,
                    DefaultSteps = model.Defaults.Steps,
                    DefaultGuidanceScale = model.Defaults.GuidanceScale,
                    VaeScalingFactor = model.Latents.ScalingFactor,
                },
                Tasks = model.Encoder is null ? ["text-to-image"] : ["text-to-image", "img2img", "inpainting"],
            };
            return new StableDiffusionPipeline(new FamilyPipeline(model, schedulers, name), info) { _options = options };
        }
        catch
        {
            foreach (var c in opened) c.Dispose();
            throw;
        }
    }

    private Task<GenerationResult> GenerateFamilyAsync(FamilyPipeline family, GenerationRequest request, IProgress<GenerationProgress>? progress,
        CancellationToken cancellationToken)
    {
        request = ResolveLoras(WithDefaults(request)); // <lora:…> tags out of the prompt, the full LoRA set in Loras
        family.Validate(request); // refused before any work, naming the field
        FamilyLoras.Check(family.Model, Info.Family.Architecture, request.Loras ?? [], _options.SkipUnmatchedLoraLayers);
        Enter();
        return Task.Run(() =>
        {
            _generationsOnThisThread++;
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _disposing.Token);
            using var activity = LocalDiffusionTelemetry.StartGenerate(Info, request,
                request.Width ?? family.Model.Defaults.Width, request.Height ?? family.Model.Defaults.Height);
            try
            {
                using var loras = UseLoras(request);
                var result = family.Generate(request, progress, linked.Token);
                return loras.Notes.Count == 0 ? result : result with { Warnings = [.. loras.Notes, .. result.Warnings] }; // skipped LoRA layers
            }
            catch (Exception e) when (LocalDiffusionTelemetry.FailFilter(activity, e))
            {
                throw;
            }
            catch (Microsoft.ML.OnnxRuntime.OnnxRuntimeException) when (linked.IsCancellationRequested)
            {
                throw new OperationCanceledException(linked.Token);
            }
            catch (ModelLoadException) when (linked.IsCancellationRequested)
            {
                throw new OperationCanceledException(linked.Token);
            }
            finally
            {
                _generationsOnThisThread--;
                Exit();
            }
        }, CancellationToken.None);
    }
}
