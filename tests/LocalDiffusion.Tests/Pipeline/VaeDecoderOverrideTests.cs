using LocalDiffusion.Errors;
using LocalDiffusion.Pipeline;
using LocalDiffusion.Onnx;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Tests.Pipeline;

/// <summary>
/// PipelineOptions.VaeDecoderPath (another VAE decoder, as AUTOMATIC1111's and ComfyUI's VAE choice) and the float32
/// fallback for an fp16 decoder that overflows, on tiny-sdxl-olive (float16 throughout) with models/test/vae
/// (tools/build_vae_test_decoders.py): sdxl-overflow/model.onnx is an fp16 decoder whose conv_in output exceeds float16's
/// range on ordinary latents, model.fp32.onnx beside it the same network in float32.
/// </summary>
public class VaeDecoderOverrideTests
{
    private const string Olive = "tiny-sdxl-olive";

    private static string Vae(params string[] parts) => Path.Combine([TestPaths.ModelsDir, "test", "vae", .. parts]);

    private static readonly GenerationRequest Request = new() { Prompt = "a red circle", Steps = 3, Seed = 11, Width = 96, Height = 64, GuidanceScale = 5 };

    private static StableDiffusionPipeline Load(string model, string? vae) =>
        StableDiffusionPipeline.Load(model, new PipelineOptions { Device = "cpu", VaeDecoderPath = vae, UseModelCache = false });

    /// <summary>
    /// The picture <paramref name="decoderPath"/> makes of <paramref name="latents"/> [1,4,h,w], computed here with ONNX Runtime
    /// directly and diffusers' post-processing (latents / scaling factor, then clamp(x/2 + 0.5, 0, 1)·255 rounded, HWC).
    /// </summary>
    private static byte[] DecodeDirectly(string decoderPath, float[] latents, int latentHeight, int latentWidth, float scalingFactor)
    {
        using var session = new InferenceSession(decoderPath);
        var scaled = latents.Select(v => v / scalingFactor).ToArray();
        using var input = OrtValue.CreateTensorValueFromMemory(scaled, [1, 4, latentHeight, latentWidth]);
        using var options = new RunOptions();
        using var outputs = session.Run(options, ["latent_sample"], [input], session.OutputNames);
        var chw = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        int height = latentHeight * 8, width = latentWidth * 8, plane = height * width;
        var rgb = new byte[plane * 3];
        for (var c = 0; c < 3; c++)
            for (var i = 0; i < plane; i++)
                rgb[i * 3 + c] = (byte)MathF.Round(Math.Clamp(chw[c * plane + i] * 0.5f + 0.5f, 0f, 1f) * 255f, MidpointRounding.ToEven);
        return rgb;
    }

    [Fact]
    public async Task TheOverrideDecodesInsteadOfTheModelsDecoder()
    {
        // tiny's (SD 1.x) float32 decoder has no config.json, so nothing claims another scaling factor; its picture differs
        // from tiny-sdxl-olive's own decoder's, and is exactly what it makes of the final latents.
        var token = TestContext.Current.CancellationToken;
        var decoder = Path.Combine(TestModels.PathOf("tiny"), "vae_decoder", "model.onnx");
        using var pipeline = Load(TestModels.PathOf(Olive), Path.GetDirectoryName(decoder));
        Assert.Equal(decoder, pipeline.Info.VaeDecoderPath);
        Assert.Equal("float32", pipeline.Info.VaeDecoderPrecision);
        Assert.Contains(pipeline.Info.Components, c => c.Name == "vae_decoder" && c.FilePath == decoder);

        var result = await pipeline.GenerateAsync(Request, cancellationToken: token);
        var own = await TestModels.Pipeline(Olive).GenerateAsync(Request, cancellationToken: token);
        Assert.Equal(own.FinalLatents, result.FinalLatents); // only the decoding changed
        Assert.Equal(DecodeDirectly(decoder, result.FinalLatents, 8, 12, 0.13025f), result.Images[0].Rgb);
        Assert.True(result.Images[0].Rgb.Zip(own.Images[0].Rgb, (a, b) => Math.Abs(a - b)).Average() > 10, "the model's own decoder was used");
        Assert.Empty(result.Warnings);
    }

    [Fact]
    public async Task AnOverflowingFp16DecoderFallsBackToItsFp32VariantWithAWarning()
    {
        // The model's decoder replaced by the overflowing fp16 one, with its float32 variant shipped beside it as model.fp32.onnx.
        var token = TestContext.Current.CancellationToken;
        using var model = TestModels.CopyOf(Olive);
        var decoder = Path.Combine(model.Path, "vae_decoder", "model.onnx");
        var variant = Path.Combine(model.Path, "vae_decoder", "model.fp32.onnx");
        File.Copy(Vae("sdxl-overflow", "model.onnx"), decoder, overwrite: true);
        File.Copy(Vae("sdxl-overflow", "model.fp32.onnx"), variant);
        using var pipeline = Load(model.Path, null);
        Assert.Equal(variant, pipeline.Info.VaeDecoderFallbackPath);

        var result = await pipeline.GenerateAsync(Request with { ImageCount = 2 }, cancellationToken: token);

        var warning = Assert.Single(result.Warnings);
        Assert.Contains(decoder, warning);
        Assert.Contains(variant, warning);
        Assert.Contains("image 1, 2 of 2", warning);
        // Exactly the float32 decoder's pictures of the same latents: here given as the override, so it decodes first.
        using var fp32 = Load(model.Path, Vae("sdxl-overflow", "model.fp32.onnx"));
        var expected = await fp32.GenerateAsync(Request with { ImageCount = 2 }, cancellationToken: token);
        Assert.Empty(expected.Warnings);
        Assert.Equal(expected.Images[0].Rgb, result.Images[0].Rgb);
        Assert.Equal(expected.Images[1].Rgb, result.Images[1].Rgb);
        Assert.Equal(DecodeDirectly(variant, result.FinalLatents[..(4 * 8 * 12)], 8, 12, 0.13025f), result.Images[0].Rgb);
    }

    [Fact]
    public async Task AnOverrideFolderWithAnFp16DecoderAndItsVariantFallsBackToo()
    {
        // models/test/vae/sdxl-overflow as the override: model.onnx (fp16) decodes first, model.fp32.onnx beside it after.
        using var pipeline = Load(TestModels.PathOf(Olive), Vae("sdxl-overflow"));
        Assert.Equal(Vae("sdxl-overflow", "model.onnx"), pipeline.Info.VaeDecoderPath);
        var result = await pipeline.GenerateAsync(Request, cancellationToken: TestContext.Current.CancellationToken);
        Assert.Contains(result.Warnings, w => w.Contains("decoded again in float32", StringComparison.Ordinal));
        Assert.Equal(DecodeDirectly(Vae("sdxl-overflow", "model.fp32.onnx"), result.FinalLatents, 8, 12, 0.13025f), result.Images[0].Rgb);
    }

    [Fact]
    public async Task WithoutAnFp32DecoderTheOverflowIsTheErrorNamingTheFile()
    {
        using var model = TestModels.CopyOf(Olive);
        var decoder = Path.Combine(model.Path, "vae_decoder", "model.onnx");
        File.Copy(Vae("sdxl-overflow", "model.onnx"), decoder, overwrite: true);
        using var pipeline = Load(model.Path, null);
        Assert.Null(pipeline.Info.VaeDecoderFallbackPath);

        var e = await Assert.ThrowsAsync<GenerationNumericsException>(() => pipeline.GenerateAsync(Request, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal(NumericsStage.VaeDecoder, e.Stage);
        Assert.Contains(decoder, e.Message);
        Assert.Contains("--vae", e.Message);
        Assert.Contains("model.fp32.onnx", e.Message);
    }

    [Fact]
    public void AVariantThatIsNotFloat32IsNamedAtLoad()
    {
        using var model = TestModels.CopyOf(Olive);
        var variant = Path.Combine(model.Path, "vae_decoder", "model.fp32.onnx");
        File.Copy(Path.Combine(model.Path, "vae_decoder", "model.onnx"), variant); // float16, under the float32 name
        var e = Assert.Throws<ModelLoadException>(() => Load(model.Path, null));
        Assert.Equal(variant, e.FilePath);
        Assert.Contains("float16", e.Message);
    }

    [Fact]
    public void BadOverridesAreNamedAtLoad()
    {
        var olive = TestModels.PathOf(Olive);
        using var temp = new TempDirectory();

        var missing = Path.Combine(temp.Path, "no-such-vae");
        Assert.Equal(missing, Assert.Throws<ModelLoadException>(() => Load(olive, missing)).FilePath);

        // A folder without model.onnx (nor vae_decoder/model.onnx) names the file it looked for.
        Assert.Equal(Path.Combine(temp.Path, "model.onnx"), Assert.Throws<ModelLoadException>(() => Load(olive, temp.Path)).FilePath);

        var safetensors = Path.Combine(temp.Path, "sdxl_vae.safetensors");
        File.WriteAllBytes(safetensors, [1, 2, 3]);
        var weights = Assert.Throws<ModelLoadException>(() => Load(olive, safetensors));
        Assert.Equal(safetensors, weights.FilePath);
        Assert.Contains("ONNX", weights.Message);

        // 16 latent channels: another family's VAE.
        var wide = Vae("16-channel", "model.onnx");
        var channels = Assert.Throws<ModelLoadException>(() => Load(olive, wide));
        Assert.Equal(wide, channels.FilePath);
        Assert.Contains("16 latent channels", channels.Message);

        // tiny-optimum's VAE states SD 1.x's scaling_factor 0.18215: the model's latents are SDXL's (0.13025).
        var sd1 = Path.Combine(TestModels.PathOf("tiny-optimum"), "vae_decoder");
        var scale = Assert.Throws<ModelLoadException>(() => Load(olive, sd1));
        Assert.Equal(Path.Combine(sd1, "config.json"), scale.FilePath);
        Assert.Contains("0.18215", scale.Message);

        // Not a VAE decoder at all (a UNet): the existing check names it.
        var unet = Path.Combine(TestModels.PathOf("tiny"), "unet", "model.onnx");
        Assert.Equal(unet, Assert.Throws<ModelLoadException>(() => Load(olive, unet)).FilePath);

        var empty = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => Load(olive, " "));
        Assert.Equal(nameof(PipelineOptions.VaeDecoderPath), empty.ParamName);
    }

    [Fact]
    public void AGpuOptimisedDecoderOnTheCpuIsNamedWithTheProviderToUse()
    {
        // models/test/vae/gpu-only has a fused com.microsoft GroupNorm, as Olive's DirectML/CUDA-optimised exports do, which
        // ONNX Runtime's CPU provider does not implement.
        var decoder = Vae("gpu-only", "model.onnx");
        var e = Assert.Throws<ModelLoadException>(() => Load(TestModels.PathOf(Olive), decoder));
        Assert.Equal(decoder, e.FilePath);
        Assert.Contains("GroupNorm", e.Message);
        Assert.Contains("--device cuda or directml", e.Message);
    }

    [Fact]
    public void AModelFolderGivenAsTheOverrideLendsItsVaeDecoder()
    {
        // A whole model folder: its vae_decoder/ (tiny-sdxl's float32 decoder, scaling_factor 0.13025 like tiny-sdxl-olive's).
        using var pipeline = Load(TestModels.PathOf(Olive), TestModels.PathOf("tiny-sdxl"));
        Assert.Equal(Path.Combine(TestModels.PathOf("tiny-sdxl"), "vae_decoder", "model.onnx"), pipeline.Info.VaeDecoderPath);
        Assert.Equal("float32", pipeline.Info.VaeDecoderPrecision);
    }
}
