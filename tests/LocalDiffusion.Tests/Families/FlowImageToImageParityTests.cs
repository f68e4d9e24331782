using LocalDiffusion.Pipeline;
using System.Text.Json;
using LocalDiffusion.Families.Flux;
using LocalDiffusion.Imaging;
using LocalDiffusion.Randomness;

namespace LocalDiffusion.Tests.Families;

/// <summary>
/// SD 3 and FLUX.1 img2img and inpainting through the family orchestrator, against diffusers v0.31.0's
/// StableDiffusion3Img2ImgPipeline / StableDiffusion3InpaintPipeline / FluxImg2ImgPipeline / FluxInpaintPipeline steps on the
/// tiny models (TestData/Pipeline/diffusers_sd3_tiny.json and diffusers_flux_tiny.json, from tools/pipeline_reference). The
/// reference's input image is a formula in [−1, 1], not an 8-bit picture, so it is handed over through the
/// <c>InitPixels</c> seam: the VAE encode with its posterior draw, the noise drawn after it and the whole loop are ours.
/// Tolerance 1e-4 of the latents' largest magnitude (the text-to-image parity tests' bound).
/// </summary>
public sealed class FlowImageToImageParityTests
{
    private static JsonElement Case(string file, string name) =>
        JsonDocument.Parse(File.ReadAllText(TestPaths.TestData("Pipeline", file))).RootElement.GetProperty("cases")
            .EnumerateArray().First(c => c.GetProperty("name").GetString() == name);

    private static float[] Floats(JsonElement array) => [.. array.EnumerateArray().Select(v => v.GetSingle())];

    private static string Model(string name) => Path.Combine(TestPaths.ModelsDir, "test", name);

    private static void AssertLatents(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        var scale = expected.Max(MathF.Abs);
        var worst = expected.Zip(actual, (e, a) => MathF.Abs(e - a)).Max();
        Assert.True(worst <= 1e-4f * scale, $"{what}: max |Δ| {worst} > 1e-4 × {scale}");
    }

    /// <summary>tools/pipeline_reference/sd3_tiny.py's image_formula: 0.8·sin(0.11x + 0.07y + 1.3c), CHW, float32.</summary>
    internal static float[] ImageFormula(int width, int height)
    {
        var chw = new float[3 * width * height];
        for (var c = 0; c < 3; c++)
            for (var y = 0; y < height; y++)
                for (var x = 0; x < width; x++)
                    chw[(c * height + y) * width + x] = 0.8f * MathF.Sin(0.11f * x + 0.07f * y + 1.3f * c);
        return chw;
    }

    /// <summary>sd3_tiny.py's mask_formula as a picture: white (repaint) on 21 ≤ x &lt; 70, 13 ≤ y &lt; 45.</summary>
    internal static InitImage MaskRectangle(int width, int height)
    {
        var rgb = new byte[width * height * 3];
        for (var y = 13; y < 45; y++)
            for (var x = 21; x < 70; x++)
                rgb.AsSpan((y * width + x) * 3, 3).Fill(255);
        return new InitImage(width, height, rgb);
    }

    private static GenerationRequest Request(JsonElement c)
    {
        int width = c.GetProperty("width").GetInt32(), height = c.GetProperty("height").GetInt32();
        return new GenerationRequest
        {
            Prompt = c.GetProperty("prompt").GetString()!,
            Steps = c.GetProperty("steps").GetInt32(),
            GuidanceScale = c.TryGetProperty("guidance", out var g) ? g.GetSingle() : null,
            Width = width,
            Height = height,
            Seed = c.GetProperty("seed").GetInt64(),
            Strength = c.GetProperty("strength").GetSingle(),
            MaxSequenceLength = c.GetProperty("max_sequence_length").GetInt32(),
            InitImage = new InitImage(width, height, new byte[width * height * 3]), // size only: InitPixels are encoded
            InitPixels = ImageFormula(width, height),
            MaskImage = c.TryGetProperty("mask", out _) ? MaskRectangle(width, height) : null,
        };
    }

    // Stopped before the first step: the result's latents are the noised starting latents.
    private static GenerationRequest Stopped(GenerationRequest r)
    {
        var stop = new CancellationTokenSource();
        stop.Cancel();
        return r with { FinishEarly = stop.Token };
    }

    [Theory]
    [InlineData("diffusers_sd3_tiny.json", "img2img_euler_64x96", "tiny-sd3")]
    [InlineData("diffusers_sd3_tiny.json", "inpaint_euler_64x96", "tiny-sd3")]
    [InlineData("diffusers_flux_tiny.json", "dev_img2img_64x96", "tiny-flux-dev")]
    [InlineData("diffusers_flux_tiny.json", "schnell_img2img_64x64", "tiny-flux-schnell")]
    [InlineData("diffusers_flux_tiny.json", "dev_inpaint_64x96", "tiny-flux-dev")]
    public async Task Image_to_image_and_inpainting_match_diffusers(string file, string name, string model)
    {
        var c = Case(file, name);
        using var pipeline = StableDiffusionPipeline.Load(Model(model), new PipelineOptions { Device = "cpu" });
        var request = Request(c);

        // The starting latents: posterior sample, then the noise, then scale_noise at the begin index.
        var start = await pipeline.GenerateAsync(Stopped(request));
        var shape = c.GetProperty("latent_shape").EnumerateArray().Select(v => v.GetInt32()).ToArray();
        if (c.TryGetProperty("noised_latents", out var noised))
            AssertLatents(Floats(noised), start.FinalLatents, name + " noised");
        else
        {
            var packed = new float[start.FinalLatents.Length];
            FluxPacking.Pack(start.FinalLatents, 1, shape[1], shape[2], shape[3], packed);
            AssertLatents(Floats(c.GetProperty("noised_latents_packed")), packed, name + " noised");
        }
        Assert.Equal(0, start.UnetEvaluations);

        var result = await pipeline.GenerateAsync(request);
        AssertLatents(Floats(c.GetProperty("final_latents")), result.FinalLatents, name);
        Assert.Equal(c.GetProperty("timesteps").GetArrayLength(), result.UnetEvaluations);
        Assert.Equal(c.GetProperty("sigmas").GetArrayLength() - 1 - c.GetProperty("begin_index").GetInt32(), result.UnetEvaluations);
    }

    [Fact]
    public async Task InitLatents_are_the_encoded_image_as_sd3_img2img_takes_16_channel_latents_and_the_noise_is_the_first_draw()
    {
        // StableDiffusion3Img2ImgPipeline.prepare_latents: an image with the VAE's latent channels is used as init_latents
        // (no encode, no posterior draw), so randn is the generator's first draw; scale_noise then mixes at σ[begin].
        var c = Case("diffusers_sd3_tiny.json", "img2img_euler_64x96");
        using var pipeline = StableDiffusionPipeline.Load(Model("tiny-sd3"), new PipelineOptions { Device = "cpu" });
        var given = Floats(c.GetProperty("image_latents"));
        var request = Request(c) with { InitImage = null, InitPixels = null, InitLatents = given };
        var start = await pipeline.GenerateAsync(Stopped(request));

        var noise = new float[given.Length];
        new TorchGenerator(c.GetProperty("seed").GetInt64()).FillNormal(noise);
        var sigma = Floats(c.GetProperty("sigmas"))[c.GetProperty("begin_index").GetInt32()];
        var expected = given.Select((x, k) => sigma * noise[k] + (1f - sigma) * x).ToArray();
        // The same float32 expression as the scheduler's; 1e-6 of scale allows a differently rounded σ.
        var scale = expected.Max(MathF.Abs);
        Assert.True(expected.Zip(start.FinalLatents, (e, a) => MathF.Abs(e - a)).Max() <= 1e-6f * scale);
    }
}
