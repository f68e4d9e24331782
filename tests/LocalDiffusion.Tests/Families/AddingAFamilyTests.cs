using LocalDiffusion.Latents;
using LocalDiffusion.Pipeline;
using LocalDiffusion.Families;
using LocalDiffusion.Model;
using LocalDiffusion.Onnx;
using LocalDiffusion.Schedulers;
using LocalDiffusion.Vae;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Tests.Families;

/// <summary>
/// The README's "Adding a family" walkthrough, as a test: a family written here, outside the engine's orchestrator and
/// front-ends — an unconditional model that reuses tiny-sd3's transformer and VAE with an empty conditioning — is
/// registered and then loaded, described and run by the unchanged <see cref="StableDiffusionPipeline"/>.
/// </summary>
public sealed class AddingAFamilyTests
{
    /// <summary>Step 1: the detector (which folders it claims) and the loader (what it opens).</summary>
    private sealed class UnconditionalFamily : DiffusionFamily
    {
        public override string Name => "Unconditional";

        public override bool Claims(FamilyFolder folder) => folder.PipelineClass == "UnconditionalFlowPipeline";

        public override FamilyModel Open(FamilyFolder folder, SessionFactory sessions, PipelineOptions options, List<OnnxComponent> opened)
        {
            var loaded = ComponentLoader.LoadAll(sessions,
                [("transformer", folder.Model("transformer", "the transformer")), ("vae_decoder", folder.Model("vae_decoder", "the VAE decoder"))], opened);
            var latents = new LatentFormat(16, (float)folder.Number("vae_decoder", "scaling_factor", 1), (float)folder.Number("vae_decoder", "shift_factor", 0));
            return new UnconditionalModel(loaded[0])
            {
                Defaults = new FamilyDefaults(Steps: 3, GuidanceScale: 0, Width: 64, Height: 64, MaxSequenceLength: 1),
                Latents = latents,
                Decoder = new VaeDecoder(loaded[1], latents.Channels),
                SchedulerConfig = FamilyLoading.Scheduler(folder, SchedulerRegistry.Default),
                Opened = [.. opened],
            };
        }
    }

    /// <summary>
    /// Step 2: the conditioner (here: nothing to encode), the denoiser adapter and the schedule. A flow-matching transformer
    /// derives from <see cref="FlowFamilyModel"/>, which answers the rest of the seam the way SD 3 and FLUX do.
    /// </summary>
    private sealed class UnconditionalModel(OnnxComponent transformer) : FlowFamilyModel
    {
        public override string Name => "Unconditional flow";

        public override GuidanceMode Guidance => GuidanceMode.None;

        public override FamilyConditioning Encode(IReadOnlyList<LocalDiffusion.PromptEncoding.FlowPrompt> prompts, int maxSequenceLength, RunOptions runOptions) =>
            new(new float[prompts.Count * 8 * 96], 8, 96, new float[prompts.Count * 80], 80, prompts.Count);

        public override void Predict(ReadOnlyMemory<float> latents, int rows, int latentHeight, int latentWidth, float timestep, float guidance,
            FamilyConditioning conditioning, Span<float> output, RunOptions runOptions) =>
            TransformerCall.Run(transformer, runOptions,
            [
                ("hidden_states", latents, [rows, 16, latentHeight, latentWidth]),
                ("timestep", Enumerable.Repeat(timestep, rows).ToArray(), [rows]),
                ("encoder_hidden_states", conditioning.Hidden, [rows, conditioning.SequenceLength, conditioning.Width]),
                ("pooled_projections", conditioning.Pooled, [rows, conditioning.PooledWidth]),
            ], output);

        public override void SetTimesteps(IFlowMatchScheduler scheduler, int steps, int latentHeight, int latentWidth) => scheduler.SetTimesteps(steps, null);
    }

    [Fact]
    public async Task A_family_registered_from_outside_is_loaded_described_and_run_unchanged()
    {
        var folder = Directory.CreateTempSubdirectory("ld-family-walkthrough-").FullName;
        var family = new UnconditionalFamily();
        try
        {
            // Step 3: a model folder that says which family it is.
            var sd3 = Path.Combine(TestPaths.ModelsDir, "test", "tiny-sd3");
            foreach (var part in new[] { "transformer", "vae_decoder", "scheduler" })
            {
                Directory.CreateDirectory(Path.Combine(folder, part));
                foreach (var file in Directory.GetFiles(Path.Combine(sd3, part))) File.Copy(file, Path.Combine(folder, part, Path.GetFileName(file)));
            }
            File.WriteAllText(Path.Combine(folder, "model_index.json"), """{"_class_name": "UnconditionalFlowPipeline"}""");
            Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(folder, new PipelineOptions { Device = "cpu" }).Dispose());

            // Step 4: register it. Nothing else changes.
            FamilyRegistry.Register(family);
            using var pipeline = StableDiffusionPipeline.Load(folder, new PipelineOptions { Device = "cpu" });
            Assert.Equal("Unconditional flow", pipeline.Info.Family.Name);
            Assert.Equal((3, 0f), (pipeline.Info.Family.DefaultSteps, pipeline.Info.Family.DefaultGuidanceScale));
            var progress = new List<int>();
            var result = await pipeline.GenerateAsync(new GenerationRequest { Prompt = "ignored", Seed = 5 }, new InlineProgress(p => progress.Add(p.Step)));
            var image = Assert.Single(result.Images);
            Assert.Equal((64, 64), (image.Width, image.Height));
            Assert.Equal(3, result.UnetEvaluations);
            Assert.Contains(3, progress);
            Assert.True(image.Rgb.Max() - image.Rgb.Min() > 16, "a flat picture: the stages did not run");
            Assert.Contains("Steps: 3", image.Parameters);
        }
        finally
        {
            FamilyRegistry.Unregister(family);
            Directory.Delete(folder, recursive: true);
        }
    }

    private sealed class InlineProgress(Action<GenerationProgress> report) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => report(value);
    }
}
