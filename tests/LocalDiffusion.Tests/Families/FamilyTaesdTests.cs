using LocalDiffusion.Pipeline;
using LocalDiffusion.Decoding;
using LocalDiffusion.Onnx;

namespace LocalDiffusion.Tests.Families;

/// <summary>
/// The 16-channel TAESD (TAESD3/TAEF1's width) with the SD 3 and FLUX families: models/test/taesd/taef1 (diffusers'
/// AutoencoderTiny.decode export, random weights, tools/build_taesd_test_decoders.py) as the pictures' decoder and as the
/// previews'. A TAESD3/TAEF1 decodes the transformer's latents as they are: the VAE's scaling and shift factors (tiny-sd3's
/// 1.5305/0.0609, tiny-flux's 0.3611/0.1159) are not applied, as diffusers does with AutoencoderTiny's scaling_factor 1.0
/// and shift_factor 0. The expected pictures are the public LatentDecoder's decode of the final latents, which the
/// TaesdTests parity tests check against diffusers.
/// </summary>
public class FamilyTaesdTests
{
    private static string Taef1 => Path.Combine(TestPaths.ModelsDir, "test", "taesd", "taef1");
    private static string Model(string name) => Path.Combine(TestPaths.ModelsDir, "test", name);

    private sealed class Collect : IProgress<GenerationProgress>
    {
        public List<GenerationProgress> Reports { get; } = [];

        public void Report(GenerationProgress value) => Reports.Add(value);
    }

    private static async Task<byte[]> Taef1Picture(float[] latents, int h, int w)
    {
        using var decoder = LatentDecoder.Open(Taef1, latentChannels: 16, options: new PipelineOptions { Device = "cpu", UseModelCache = false });
        Assert.Equal("TAESD", decoder.Kind);
        return (await decoder.DecodeAsync(latents, h, w, TestContext.Current.CancellationToken)).Rgb;
    }

    [Fact]
    public async Task TAEF1_decodes_FLUX_pictures_from_the_unscaled_latents()
    {
        var token = TestContext.Current.CancellationToken;
        var request = new GenerationRequest { Prompt = "a red circle", Width = 64, Height = 96, Steps = 3, Seed = 4 };
        using var plain = StableDiffusionPipeline.Load(Model("tiny-flux-schnell"), new PipelineOptions { Device = "cpu" });
        using var tiny = StableDiffusionPipeline.Load(Model("tiny-flux-schnell"), new PipelineOptions { Device = "cpu", VaeDecoderPath = Taef1 });
        Assert.Equal("TAESD", tiny.Info.VaeDecoderKind);
        Assert.Equal("VAE", plain.Info.VaeDecoderKind);
        var a = await plain.GenerateAsync(request, cancellationToken: token);
        var b = await tiny.GenerateAsync(request, cancellationToken: token);
        Assert.Equal(a.FinalLatents, b.FinalLatents);
        Assert.Equal(await Taef1Picture(b.FinalLatents, 12, 8), b.Images[0].Rgb);
        Assert.NotEqual(a.Images[0].Rgb, b.Images[0].Rgb);
    }

    [Fact]
    public async Task SD3_previews_come_from_the_TAESD_and_the_picture_from_the_VAE()
    {
        var token = TestContext.Current.CancellationToken;
        var request = new GenerationRequest { Prompt = "a red circle", Width = 64, Height = 64, Steps = 4, Seed = 4 };
        using var pipeline = StableDiffusionPipeline.Load(Model("tiny-sd3"), new PipelineOptions { Device = "cpu", PreviewDecoderPath = Taef1 });
        Assert.Equal(Path.Combine(Taef1, "vae_decoder", "model.onnx"), pipeline.Info.PreviewDecoderPath);
        Assert.Equal("TAESD", pipeline.Info.PreviewDecoderKind);
        Assert.Equal("VAE", pipeline.Info.VaeDecoderKind);
        var progress = new Collect();
        var result = await pipeline.GenerateAsync(request with { PreviewSteps = [2, 4] }, progress, token);
        var previews = progress.Reports.Where(r => r.Preview is not null).ToList();
        Assert.Equal([2, 4], previews.Select(p => p.Step));
        Assert.Equal(await Taef1Picture(result.FinalLatents, 8, 8), previews[^1].Preview![0].Rgb);
        using var plain = StableDiffusionPipeline.Load(Model("tiny-sd3"), new PipelineOptions { Device = "cpu" });
        Assert.Equal((await plain.GenerateAsync(request, cancellationToken: token)).Images[0].Rgb, result.Images[0].Rgb);
        Assert.Equal(plain.Info.VaeDecoderPath, plain.Info.PreviewDecoderPath); // without a TAESD, the VAE previews

        var e = await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() => pipeline.GenerateAsync(request with { PreviewSteps = [5] }, cancellationToken: token));
        Assert.Equal("PreviewSteps", e.ParamName);
    }

    [Fact]
    public async Task The_preview_decoder_opens_on_the_first_preview_and_a_wrong_one_is_refused_before_its_work()
    {
        // TAEF1 as SD 3's preview decoder is not opened by a load or a generation without previews.
        var token = TestContext.Current.CancellationToken;
        var request = new GenerationRequest { Prompt = "a red circle", Width = 64, Height = 64, Steps = 2, Seed = 4 };
        using (var pipeline = StableDiffusionPipeline.Load(Model("tiny-sd3"), new PipelineOptions { Device = "cpu", PreviewDecoderPath = Taef1 }))
        {
            await pipeline.GenerateAsync(request, cancellationToken: token);
            Assert.DoesNotContain("preview_decoder", pipeline.OpenSessions());
            Assert.Contains("transformer", pipeline.OpenSessions());
            await pipeline.GenerateAsync(request with { PreviewSteps = [1] }, cancellationToken: token);
            Assert.Contains("preview_decoder", pipeline.OpenSessions());
        }

        // madebyollin's raw 4-channel TAESD has no config.json to say so: the load takes it, and the first request with
        // previews is refused, naming the file, before any step (no progress past encoding is reported).
        var raw = Path.Combine(TestPaths.ModelsDir, "test", "taesd", "raw", "taesd_decoder.onnx");
        using var wrong = StableDiffusionPipeline.Load(Model("tiny-flux-schnell"), new PipelineOptions { Device = "cpu", PreviewDecoderPath = raw });
        await wrong.GenerateAsync(request, cancellationToken: token);
        var progress = new Collect();
        var e = await Assert.ThrowsAsync<ModelLoadException>(() => wrong.GenerateAsync(request with { PreviewSteps = [1] }, progress, token));
        Assert.Equal(raw, e.FilePath);
        Assert.Contains("this TAESD decoder takes 4 latent channels", e.Message);
        Assert.Contains("this model's latents have 16", e.Message);
        Assert.DoesNotContain(progress.Reports, r => r.Step > 0);
    }

    [Fact]
    public void A_4_channel_TAESD_is_refused_for_FLUX_naming_the_file()
    {
        var raw = Path.Combine(TestPaths.ModelsDir, "test", "taesd", "raw", "taesd_decoder.onnx");
        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(Model("tiny-flux-schnell"), new PipelineOptions { Device = "cpu", VaeDecoderPath = raw }));
        Assert.Equal(raw, e.FilePath);
        Assert.Contains("this TAESD decoder takes 4 latent channels", e.Message);
        Assert.Contains("this model's latents have 16", e.Message);
    }

    [Fact]
    public void A_full_VAE_of_another_latent_scale_is_refused_for_SD3_naming_its_config()
    {
        // --vae reaches the families now: FLUX's 16-channel VAE (scaling_factor 0.3611) on SD 3 (1.5305) is another latent space.
        var flux = Path.Combine(Model("tiny-flux-schnell"), "vae_decoder");
        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(Model("tiny-sd3"), new PipelineOptions { Device = "cpu", VaeDecoderPath = flux }));
        Assert.Equal(Path.Combine(flux, "config.json"), e.FilePath);
        Assert.Contains("scaling_factor is 0.3611", e.Message);
    }
}
