using LocalDiffusion.Pipeline;
using System.Numerics.Tensors;
using System.Text.Json;
using LocalDiffusion.Decoding;
using LocalDiffusion.Model;
using LocalDiffusion.Onnx;
using LocalDiffusion.Vae;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Tests.Pipeline;

/// <summary>
/// TAESD (the tiny autoencoder) as a decoder (PipelineOptions.VaeDecoderPath) and as the live-preview decoder
/// (PipelineOptions.PreviewDecoderPath, or the model folder's taesd/). Decoders: models/shapes/taesd (trained by
/// tools/shapes/train_taesd.py, diffusers' AutoencoderTiny.decode export, config.json), models/test/taesd/raw
/// (madebyollin's form: [0, 1] output, other tensor names, no config) and models/test/taesd/taef1 (16 latent channels),
/// built by tools/build_taesd_test_decoders.py.
/// </summary>
public class TaesdTests
{
    private static string Shapes => Path.Combine(TestPaths.ModelsDir, "shapes");
    private static string ShapesTaesd => Path.Combine(Shapes, "taesd");
    private static string TestTaesd(params string[] parts) => Path.Combine([TestPaths.ModelsDir, "test", "taesd", .. parts]);

    private static StableDiffusionPipeline Load(string model, PipelineOptions? options = null) =>
        StableDiffusionPipeline.Load(model, (options ?? new PipelineOptions()) with { Device = "cpu", UseModelCache = false });

    private sealed class Collect : IProgress<GenerationProgress>
    {
        public List<GenerationProgress> Reports { get; } = [];

        public void Report(GenerationProgress value) => Reports.Add(value);
    }

    // The engine's decoder on a file, as the pipeline opens it.
    private static float[] EngineDecode(string decoderPath, float[] latents, int channels, int h, int w)
    {
        var file = VaeDecoderFile.Open(decoderPath);
        var sessions = new SessionFactory(ExecutionDevice.Parse("cpu"), 1, 1);
        using var component = OnnxComponent.Load("vae_decoder", file.ModelPath, sessions);
        using var decoder = new VaeDecoder(component, channels, file.Tiny);
        using var run = new RunOptions();
        return decoder.Decode(latents, h, w, run);
    }

    private static (int[] Shape, float[] Latents, float[] Sample) Case(JsonElement c) =>
        (c.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
         c.GetProperty("latents").EnumerateArray().Select(e => e.GetSingle()).ToArray(),
         c.GetProperty("sample").EnumerateArray().Select(e => e.GetSingle()).ToArray());

    [Fact]
    public void The_shapes_TAESD_decodes_as_diffusers_AutoencoderTiny_does()
    {
        // Reference: diffusers v0.31.0 AutoencoderTiny.decode of seeded latents, written by tools/shapes/train_taesd.py with
        // the same weights it exported. Tolerance 1e-4 absolute on pixels in [-1, 1] (float32 convolution order).
        using var doc = JsonDocument.Parse(File.ReadAllText(TestPaths.TestData("Taesd", "shapes_taesd_reference.json")));
        var file = VaeDecoderFile.Open(ShapesTaesd);
        Assert.True(file.IsTiny);
        Assert.Equal(TinyDecoderRange.MinusOneToOne, file.Tiny!.Range);
        Assert.Null(file.ScalingFactor); // AutoencoderTiny's 1.0 is not compared with the model's
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            var (shape, latents, sample) = Case(c);
            var pixels = EngineDecode(ShapesTaesd, latents, 4, shape[2], shape[3]);
            Assert.Equal(sample.Length, pixels.Length);
            var worst = sample.Zip(pixels, (a, b) => Math.Abs(a - b)).Max();
            Assert.True(worst <= 1e-4f, $"largest difference {worst} at {shape[2]}x{shape[3]} latents");
        }
    }

    [Fact]
    public void Madebyollins_raw_form_is_recognised_and_mapped_to_minus_one_one()
    {
        // taesd_decoder.onnx returns [0, 1] with an input named 'latents'; diffusers' AutoencoderTiny.decode (the reference,
        // tools/build_taesd_test_decoders.py) returns 2x − 1 of it. Tolerance 1e-4.
        using var doc = JsonDocument.Parse(File.ReadAllText(TestPaths.TestData("Taesd", "raw_taesd_reference.json")));
        var (shape, latents, sample) = Case(doc.RootElement);
        var file = VaeDecoderFile.Open(TestTaesd("raw"));
        Assert.Equal(TestTaesd("raw", "taesd_decoder.onnx"), file.ModelPath);
        Assert.Equal(TinyDecoderRange.ZeroToOne, file.Tiny!.Range);
        Assert.Contains("tanh(x/3)", file.Tiny.Evidence);
        var pixels = EngineDecode(TestTaesd("raw"), latents, 4, shape[2], shape[3]);
        var worst = sample.Zip(pixels, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(worst <= 1e-4f, $"largest difference {worst}");
    }

    [Fact]
    public void Full_VAE_decoders_are_not_taken_for_TAESDs()
    {
        Assert.False(VaeDecoderFile.Open(Path.Combine(Shapes, "vae_decoder")).IsTiny);
        Assert.False(VaeDecoderFile.Open(Path.Combine(TestPaths.ModelsDir, "test", "vae", "attention")).IsTiny);
        Assert.False(VaeDecoderFile.Open(Path.Combine(TestModels.PathOf("tiny"), "vae_decoder")).IsTiny);
    }

    [Fact]
    public async Task The_shapes_TAESD_draws_nearly_the_full_VAEs_picture()
    {
        // The same final latents (same request and seed) decoded by the full VAE and by the TAESD, through the engine:
        // PSNR of the 8-bit pictures. tools/shapes/train_taesd.py measured 23.6 dB on held-out encoded scenes (in torch);
        // the engine measured 21.6, 23.4 and 21.6 dB on these three (mean 22.2). The bar is a mean of 20 dB, and an
        // unrelated picture (another prompt) must score at least 10 dB lower.
        var token = TestContext.Current.CancellationToken;
        using var full = Load(Shapes, new PipelineOptions { FullVaePreviews = true });
        using var tiny = Load(Shapes, new PipelineOptions { VaeDecoderPath = ShapesTaesd });
        Assert.Equal("TAESD", tiny.Info.VaeDecoderKind);
        Assert.Equal("VAE", full.Info.VaeDecoderKind);
        var prompts = new[] { "a red circle on a blue background", "a yellow star on a purple background", "two squares, one green and one yellow, black background" };
        var psnrs = new List<double>();
        byte[]? firstFull = null;
        foreach (var prompt in prompts)
        {
            var request = new GenerationRequest { Prompt = prompt, Seed = 1, Steps = 20 };
            var a = await full.GenerateAsync(request, cancellationToken: token);
            var b = await tiny.GenerateAsync(request, cancellationToken: token);
            Assert.Equal(a.FinalLatents, b.FinalLatents); // only the decoder differs
            psnrs.Add(Psnr(a.Images[0].Rgb, b.Images[0].Rgb));
            firstFull ??= a.Images[0].Rgb;
        }
        var unrelated = Psnr(firstFull!, (await tiny.GenerateAsync(new GenerationRequest { Prompt = prompts[1], Seed = 1, Steps = 20 }, cancellationToken: token)).Images[0].Rgb);
        var mean = psnrs.Average();
        Assert.True(mean >= 20, $"TAESD vs full VAE PSNR {string.Join(", ", psnrs.Select(p => p.ToString("F1")))} dB");
        Assert.True(unrelated < mean - 10, $"an unrelated picture scored {unrelated:F1} dB against {mean:F1}");
    }

    private static double Psnr(byte[] a, byte[] b)
    {
        double sum = 0;
        for (var i = 0; i < a.Length; i++) sum += (a[i] - b[i]) * (double)(a[i] - b[i]);
        var mse = sum / a.Length;
        return mse == 0 ? 99 : 10 * Math.Log10(255.0 * 255.0 / mse);
    }

    [Fact]
    public async Task The_model_folders_TAESD_decodes_the_previews_and_the_full_VAE_the_picture()
    {
        // models/shapes ships taesd/: previews come from it (as A1111's TAESD live previews), the picture from vae_decoder/.
        // At the last step the preview's latents are the final latents, divided by their RMS when it exceeds 1 (the
        // documented preview normalisation; no VAE scaling factor for a TAESD): the preview must be exactly the public
        // LatentDecoder's TAESD picture of them, and the final picture exactly the full VAE's.
        var token = TestContext.Current.CancellationToken;
        using var pipeline = Load(Shapes);
        Assert.Equal(Path.Combine(ShapesTaesd, "vae_decoder", "model.onnx"), pipeline.Info.PreviewDecoderPath);
        Assert.Equal("TAESD", pipeline.Info.PreviewDecoderKind);
        Assert.Equal(Path.Combine(Shapes, "vae_decoder", "model.onnx"), pipeline.Info.VaeDecoderPath);
        var request = new GenerationRequest { Prompt = "a red circle on a blue background", Seed = 3, Steps = 8, PreviewSteps = [4, 8] };
        var progress = new Collect();
        var result = await pipeline.GenerateAsync(request, progress, token);
        var latents = result.FinalLatents;
        var rms = MathF.Sqrt(TensorPrimitives.SumOfSquares<float>(latents) / latents.Length);
        var normalised = latents.Select(v => v / MathF.Max(rms, 1f)).ToArray();
        using var decoder = LatentDecoder.Open(ShapesTaesd, options: new PipelineOptions { Device = "cpu", UseModelCache = false });
        var taesdPicture = await decoder.DecodeAsync(normalised, 8, 8, token);
        using var fullPreviews = Load(Shapes, new PipelineOptions { FullVaePreviews = true });
        var plain = (await fullPreviews.GenerateAsync(request with { PreviewSteps = null }, cancellationToken: token)).Images[0];

        var last = progress.Reports.Last(r => r.Preview is not null);
        Assert.Equal(8, last.Step);
        Assert.Equal(taesdPicture.Rgb, last.Preview![0].Rgb);
        Assert.Equal(plain.Rgb, result.Images[0].Rgb);
        Assert.NotEqual(plain.Rgb, taesdPicture.Rgb);
    }

    [Fact]
    public async Task The_preview_decoder_opens_on_the_first_preview_and_not_before()
    {
        // models/shapes ships taesd/: it is the preview decoder, yet a load and a generation without previews (what
        // `localdiffusion generate` does) never open its session; the first request with previews opens it.
        var token = TestContext.Current.CancellationToken;
        using var pipeline = Load(Shapes);
        Assert.Equal("TAESD", pipeline.Info.PreviewDecoderKind);
        Assert.DoesNotContain(pipeline.Info.Components, c => c.Name == "preview_decoder");
        Assert.DoesNotContain("preview_decoder", pipeline.OpenSessions());
        var request = new GenerationRequest { Prompt = "a red circle", Seed = 3, Steps = 2 };
        await pipeline.GenerateAsync(request, cancellationToken: token);
        Assert.DoesNotContain("preview_decoder", pipeline.OpenSessions());
        Assert.Contains("vae_decoder", pipeline.OpenSessions()); // the reader sees sessions: the pictures' decoder is open

        var progress = new Collect();
        await pipeline.GenerateAsync(request with { PreviewSteps = [1] }, progress, token);
        Assert.Contains("preview_decoder", pipeline.OpenSessions());
        Assert.NotNull(progress.Reports.Single(r => r.Preview is not null).Preview);
    }

    [Fact]
    public async Task Without_a_TAESD_or_with_FullVaePreviews_previews_use_the_full_VAE()
    {
        var token = TestContext.Current.CancellationToken;
        using var full = Load(Shapes, new PipelineOptions { FullVaePreviews = true });
        Assert.Equal(full.Info.VaeDecoderPath, full.Info.PreviewDecoderPath);
        Assert.Equal("VAE", full.Info.PreviewDecoderKind);
        Assert.DoesNotContain(full.Info.Components, c => c.Name == "preview_decoder");
        var tiny = TestModels.Pipeline("tiny"); // ships no TAESD
        Assert.Equal(tiny.Info.VaeDecoderPath, tiny.Info.PreviewDecoderPath);

        // Last-step preview of the shapes model with the full VAE = its final picture.
        var request = new GenerationRequest { Prompt = "a yellow star", Seed = 3, Steps = 6, PreviewSteps = [6] };
        var progress = new Collect();
        var result = await full.GenerateAsync(request, progress, token);
        Assert.Equal(result.Images[0].Rgb, progress.Reports.Single(r => r.Preview is not null).Preview![0].Rgb);
    }

    [Fact]
    public async Task A_TAESD_in_madebyollins_form_beside_model_index_serves_the_previews()
    {
        var token = TestContext.Current.CancellationToken;
        using var model = TestModels.CopyOf("tiny");
        File.Copy(TestTaesd("raw", "taesd_decoder.onnx"), Path.Combine(model.Path, "taesd_decoder.onnx"));
        using var pipeline = Load(model.Path);
        Assert.Equal(Path.Combine(model.Path, "taesd_decoder.onnx"), pipeline.Info.PreviewDecoderPath);
        var progress = new Collect();
        var plain = await TestModels.Pipeline("tiny").GenerateAsync(TestModels.Request(), cancellationToken: token);
        var result = await pipeline.GenerateAsync(TestModels.Request() with { PreviewSteps = [2] }, progress, token);
        Assert.Equal(plain.Images[0].Rgb, result.Images[0].Rgb); // the picture is the full VAE's
        Assert.NotNull(progress.Reports.Single(r => r.Preview is not null).Preview);
    }

    [Fact]
    public void A_TAESD_for_16_channel_latents_is_refused_naming_the_file()
    {
        var file = TestTaesd("taef1", "vae_decoder", "model.onnx");
        var asVae = Assert.Throws<ModelLoadException>(() => Load(Shapes, new PipelineOptions { VaeDecoderPath = TestTaesd("taef1") }));
        Assert.Equal(file, asVae.FilePath);
        Assert.Contains("this TAESD decoder takes 16 latent channels", asVae.Message);
        Assert.Contains("this model's latents have 4", asVae.Message);
        var asPreview = Assert.Throws<ModelLoadException>(() => Load(Shapes, new PipelineOptions { PreviewDecoderPath = TestTaesd("taef1") }));
        Assert.Equal(file, asPreview.FilePath);
    }

    [Fact]
    public void A_taesd_folder_without_a_decoder_is_refused_naming_it()
    {
        using var model = TestModels.CopyOf("tiny");
        Directory.CreateDirectory(Path.Combine(model.Path, "taesd"));
        var e = Assert.Throws<ModelLoadException>(() => Load(model.Path));
        Assert.Equal(Path.Combine(model.Path, "taesd", "model.onnx"), e.FilePath);
        Assert.Contains("taesd/vae_decoder/model.onnx", e.Message);
    }

    [Fact]
    public void PreviewDecoderPath_and_FullVaePreviews_together_are_refused()
    {
        var e = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => Load(Shapes, new PipelineOptions { PreviewDecoderPath = ShapesTaesd, FullVaePreviews = true }));
        Assert.Equal("PreviewDecoderPath", e.ParamName);
    }
}
