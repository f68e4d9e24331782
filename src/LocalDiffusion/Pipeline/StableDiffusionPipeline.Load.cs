using LocalDiffusion.Errors;
using LocalDiffusion.Families;
using LocalDiffusion.Onnx;
using LocalDiffusion.Schedulers;

namespace LocalDiffusion.Pipeline;

/// <summary>Loading: the family that claims the folder opens it; what every family needs is checked here.</summary>
public sealed partial class StableDiffusionPipeline
{
    // Every component folder a family may load, for the memory preflight (absent ones count nothing).
    private static readonly string[] WeightFolders = ["unet", "transformer", "text_encoder", "text_encoder_2", "text_encoder_3", "vae_decoder"];

    /// <summary>
    /// Whether <paramref name="folder"/> looks like a model folder this engine loads (a model_index.json, or Black Forest
    /// Labs' FLUX.1 ONNX layout): what a models directory is scanned with. Nothing is opened or checked beyond that.
    /// </summary>
    public static bool IsModelFolder(string folder) =>
        // model_index.json is not parsed here: a broken one is reported when the model loads, naming it.
        Directory.Exists(folder) && (File.Exists(Path.Combine(folder, "model_index.json")) || FamilyRegistry.HoldsModel(FamilyFolder.Open(folder)));

    /// <summary>
    /// Loads the model in <paramref name="modelDirectory"/> (diffusers/optimum ONNX layout), whichever family claims it
    /// (<see cref="FamilyRegistry"/>). Every missing or malformed file gives a <see cref="ModelLoadException"/> naming it;
    /// an unavailable execution provider gives an <see cref="ExecutionProviderUnavailableException"/> saying which package
    /// provides it; weights this machine cannot hold give a <see cref="ResourceLimitException"/> before any is read.
    /// </summary>
    public static StableDiffusionPipeline Load(string modelDirectory, PipelineOptions? options = null)
    {
        options ??= new PipelineOptions();
        var device = options.Validate();
        var folder = FamilyFolder.Open(modelDirectory);
        var family = FamilyRegistry.Claim(folder);
        var sessions = new SessionFactory(device, options.IntraOpThreads, options.InterOpThreads)
        {
            Cache = options.UseModelCache ? new ModelCache(options.CacheDirectory ?? ModelCache.DefaultDirectory) : null,
            Options = options,
        };
        MemoryPreflight.Check(folder, WeightFolders, options.LowMemory, sessions.Active);
        var opened = new List<OnnxComponent>();
        try
        {
            var model = family.Open(folder, sessions, options, opened);
            model.Describe(folder, sessions, options.Schedulers ?? SchedulerRegistry.Default);
            if (options.Loras.Count > 0 && model.LoraTargets.Count == 0)
                throw new ModelIncompatibleException(nameof(options.Loras), family.Name, called => $"PipelineOptions.Loras are not supported with {model.Info.Family.Name} models yet (only SD 1.x/2.x/XL).");
            if (options.Embeddings.Count > 0 && model.Embeddings is null)
                throw new ModelIncompatibleException(nameof(options.Embeddings), family.Name,
                    _ => $"PipelineOptions.Embeddings (textual inversion) are not supported with {model.Info.Family.Name} models yet (SD 1.x/2.x/XL, SD 3 and FLUX.1 take them).");
            // Under LowMemory each session is released after the stage that uses it; the first generation uses those opened here.
            foreach (var component in opened) component.ReleaseWhenIdle = options.LowMemory;
            return new StableDiffusionPipeline(model, sessions, options);
        }
        catch
        {
            foreach (var c in opened) c.Dispose();
            throw;
        }
    }
}
