using LocalDiffusion.Onnx;
using LocalDiffusion.Schedulers;
using LocalDiffusion.Tokenizer;

namespace LocalDiffusion.Families;

/// <summary>What every family's loader does the same way: tokenizers and scheduler configs read with errors naming the file.</summary>
internal static class FamilyLoading
{
    public static ClipTokenizer Clip(string directory)
    {
        try
        {
            return ClipTokenizer.Load(directory);
        }
        catch (Exception e) when (e is TokenizerFileException or FileNotFoundException)
        {
            throw new ModelLoadException(e is TokenizerFileException t ? t.FilePath : (e as FileNotFoundException)?.FileName ?? directory, e.Message, e);
        }
    }

    public static T5Tokenizer T5(string directory)
    {
        try
        {
            return T5Tokenizer.Load(directory);
        }
        catch (Exception e) when (e is TokenizerFileException or FileNotFoundException)
        {
            throw new ModelLoadException(e is TokenizerFileException t ? t.FilePath : (e as FileNotFoundException)?.FileName ?? directory, e.Message, e);
        }
    }

    /// <summary>scheduler/scheduler_config.json, which must name a flow-matching scheduler.</summary>
    public static SchedulerConfig Scheduler(FamilyFolder folder, SchedulerRegistry schedulers)
    {
        var path = Path.Combine(folder.Root, "scheduler", "scheduler_config.json");
        if (!File.Exists(path)) throw new ModelLoadException(path, "file not found: the flow-matching scheduler's config was expected here.");
        SchedulerConfig config;
        try
        {
            config = SchedulerConfig.Load(path);
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            throw new ModelLoadException(path, SchedulerConfigProblem.Of(e), e);
        }
        if (schedulers.CreateFromConfig(config) is not IFlowMatchScheduler)
            throw new ModelLoadException(path, $"\"_class_name\" is {config.ClassName}; a flow-matching scheduler (FlowMatchEulerDiscreteScheduler) was expected for this transformer model.");
        return config;
    }

    /// <summary>vae_encoder/ when the folder has one (img2img needs it), opened and added to <paramref name="opened"/>.</summary>
    public static Vae.VaeEncoder? VaeEncoder(FamilyFolder folder, SessionFactory sessions, PipelineOptions options, List<OnnxComponent> opened, int channels)
    {
        if (folder.OptionalModel("vae_encoder") is not { } path) return null;
        var component = OnnxComponent.Load("vae_encoder", path, sessions, options.LowMemory);
        opened.Add(component);
        return new Vae.VaeEncoder(component, channels);
    }
}
