using LocalDiffusion.Pipeline;
using System.Text.Json;
using LocalDiffusion.Tests.Schedulers;

namespace LocalDiffusion.Tests.Pipeline;

/// <summary>
/// SDXL's base → refiner hand-off on models/test/tiny-sdxl and tiny-sdxl-refiner, against diffusers v0.31.0
/// (TestData/Pipeline/diffusers_sdxl_handoff_tiny.json from tools/pipeline_reference/sdxl_handoff_tiny.py):
/// StableDiffusionXLPipeline with denoising_end = f and output_type "latent", then StableDiffusionXLImg2ImgPipeline with
/// those latents as the image, denoising_start = f and the same generator object. The script records the latents
/// handed over and the refiner's final latents, and how many steps each model ran.
/// </summary>
public class RefinerHandOffTests
{
    private static readonly PipelineReferenceCases Reference = new("diffusers_sdxl_handoff_tiny.json");

    public static TheoryData<string> CaseNames => Reference.Names;

    private const string EulerCase = "handoff/euler_10_steps_at_0.8_g5.0_batch1";

    private static GenerationRequest Request(JsonElement c) =>
        StableDiffusionXLTests.Request(c) with { Scheduler = c.GetProperty("scheduler").GetString() };

    private static StableDiffusionPipeline Base => TestModels.Pipeline("tiny-sdxl");

    private static StableDiffusionPipeline Refiner => TestModels.Pipeline("tiny-sdxl-refiner");

    // As StableDiffusionXLTests: ORT's and torch's float32 kernels differ in the last bits; a step run by the wrong
    // model, a lost or repeated step, or noise added at the switch is off by O(1).
    private static void AssertMatches(JsonElement expected, float[] actual, string what)
    {
        var values = DiffusersReference.Floats(expected);
        Tolerance.AssertClose(values, actual, what, relative: 0, absolute: 1e-4 * values.Max(MathF.Abs));
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public async Task BaseStoppedAtDenoisingEndMatchesDiffusers(string name)
    {
        var c = Reference.Case(name);
        var result = await Base.GenerateAsync(Request(c) with { DenoisingEnd = c.GetProperty("switch_at").GetSingle() },
            cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(c.GetProperty("base_steps").GetInt32(), result.UnetEvaluations);
        AssertMatches(c.GetProperty("handed_latents"), result.FinalLatents, name);
        Assert.Equal(c.GetProperty("images").GetInt32(), result.Images.Count); // decoded as they are
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public async Task HandOffMatchesDiffusers(string name)
    {
        var c = Reference.Case(name);
        var steps = new List<GenerationProgress>();
        var result = await Base.GenerateWithRefinerAsync(Request(c), Refiner, c.GetProperty("switch_at").GetSingle(),
            new InlineProgress(steps.Add), TestContext.Current.CancellationToken);
        AssertMatches(c.GetProperty("final_latents"), result.FinalLatents, name);
        int baseSteps = c.GetProperty("base_steps").GetInt32(), refinerSteps = c.GetProperty("refiner_steps").GetInt32();
        Assert.Equal(baseSteps + refinerSteps, result.UnetEvaluations);
        Assert.Equal(c.GetProperty("images").GetInt32(), result.Images.Count);
        Assert.Equal(c.GetProperty("seed").GetInt64(), result.Seed);
        // One count over both models, ending with one decoding and one done report.
        var denoising = steps.Where(p => p.Phase == GenerationPhase.Denoising).ToList();
        Assert.Equal(Enumerable.Range(1, baseSteps + refinerSteps), denoising.Select(p => p.Step));
        Assert.All(denoising, p => Assert.Equal(baseSteps + refinerSteps, p.TotalSteps));
        Assert.Equal(1, steps.Count(p => p.Phase == GenerationPhase.Done));
        Assert.Equal(1, steps.Count(p => p.Phase == GenerationPhase.Encoding));
    }

    [Fact]
    public async Task TheTwoHalvesRunByHandGiveTheSameLatentsForADeterministicScheduler()
    {
        // Through the public request fields alone: base with DenoisingEnd, refiner with InitLatents + DenoisingStart.
        var c = Reference.Case(EulerCase);
        var f = c.GetProperty("switch_at").GetSingle();
        var first = await Base.GenerateAsync(Request(c) with { DenoisingEnd = f }, cancellationToken: TestContext.Current.CancellationToken);
        var second = await Refiner.GenerateAsync(Request(c) with { InitLatents = first.FinalLatents, DenoisingStart = f },
            cancellationToken: TestContext.Current.CancellationToken);
        AssertMatches(c.GetProperty("final_latents"), second.FinalLatents, "by hand");
        Assert.Equal(c.GetProperty("refiner_steps").GetInt32(), second.UnetEvaluations);
    }

    [Fact]
    public async Task MicroConditioningGoesToTheModelWhoseTimeIdsHoldIt()
    {
        // Target sizes only fit the base's time ids, aesthetic scores only the refiner's: the hand-off gives each model
        // its own (as diffusers' two pipelines take them), so it equals the two halves run by hand with those fields.
        var c = Reference.Case(EulerCase);
        var f = c.GetProperty("switch_at").GetSingle();
        var token = TestContext.Current.CancellationToken;
        var request = Request(c) with
        {
            OriginalSize = new PixelSize(192, 128), CropsCoordsTopLeft = new CropCoordinates(8, 0), TargetSize = new PixelSize(80, 48),
            AestheticScore = 7.5f, NegativeAestheticScore = 1.5f,
        };
        var handOff = await Base.GenerateWithRefinerAsync(request, Refiner, f, null, token);
        var first = await Base.GenerateAsync(request with { DenoisingEnd = f, AestheticScore = null, NegativeAestheticScore = null }, cancellationToken: token);
        var second = await Refiner.GenerateAsync(request with { InitLatents = first.FinalLatents, DenoisingStart = f, TargetSize = null },
            cancellationToken: token);
        Assert.Equal(second.FinalLatents, handOff.FinalLatents);
        // And the values arrived: without them the hand-off lands elsewhere.
        var plain = await Base.GenerateWithRefinerAsync(Request(c), Refiner, f, null, token);
        Assert.True(plain.FinalLatents.Zip(handOff.FinalLatents, (a, b) => MathF.Abs(a - b)).Max() > 1e-3f);
    }

    [Fact]
    public async Task ARefinerCanStartFromLatentsWithStrength()
    {
        // Without DenoisingStart, InitLatents are noised to Strength (diffusers' img2img with a 4-channel image):
        // a different result from continuing them as they are, with int(steps·strength) steps.
        var c = Reference.Case(EulerCase);
        var first = await Base.GenerateAsync(Request(c) with { DenoisingEnd = 0.8f }, cancellationToken: TestContext.Current.CancellationToken);
        var noised = await Refiner.GenerateAsync(Request(c) with { InitLatents = first.FinalLatents, Strength = 0.3f },
            cancellationToken: TestContext.Current.CancellationToken);
        Assert.Equal(3, noised.UnetEvaluations);
        Assert.True(noised.FinalLatents.Zip(c.GetProperty("final_latents").EnumerateArray()).Max(p => Math.Abs(p.First - p.Second.GetSingle())) > 1e-2);
    }

    public static TheoryData<string, Func<GenerationRequest, GenerationRequest>> BadRequests => new()
    {
        { "DenoisingEnd", r => r with { DenoisingEnd = 1f } },
        { "DenoisingEnd", r => r with { DenoisingEnd = float.NaN } },
        { "DenoisingStart", r => r with { DenoisingStart = 0f, InitLatents = new float[4 * 8 * 12] } },
        { "InitLatents", r => r with { DenoisingStart = 0.5f } },
        { "DenoisingStart", r => r with { DenoisingStart = 0.8f, DenoisingEnd = 0.5f, InitLatents = new float[4 * 8 * 12] } },
        { "InitLatents", r => r with { InitLatents = new float[7], DenoisingStart = 0.5f } },
        { "InitLatents", r => r with { InitLatents = [float.NaN, .. new float[4 * 8 * 12 - 1]], DenoisingStart = 0.5f } },
        // 10 leading Euler steps are 901 … 1: a split at 0.05 (cutoff 950) leaves the base nothing.
        { "DenoisingEnd", r => r with { DenoisingEnd = 0.05f } },
        // …and a split at 0.999 (cutoff 1) leaves the refiner nothing.
        { "DenoisingStart", r => r with { DenoisingStart = 0.999f, InitLatents = new float[4 * 8 * 12] } },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task BadHandOffFieldsAreRefusedBeforeWork(string field, Func<GenerationRequest, GenerationRequest> change)
    {
        var request = change(Request(Reference.Case(EulerCase)) with { ImageCount = 1 });
        var e = await Assert.ThrowsAnyAsync<ArgumentException>(() => Base.GenerateAsync(request, cancellationToken: TestContext.Current.CancellationToken));
        Assert.Equal(field, e.ParamName);
    }

    [Fact]
    public async Task TheRefinerHandOffRefusesWhatCannotWork()
    {
        var request = Request(Reference.Case(EulerCase));
        var token = TestContext.Current.CancellationToken;
        Assert.Equal("switchAt", (await Assert.ThrowsAnyAsync<ArgumentException>(() => Base.GenerateWithRefinerAsync(request, Refiner, 1.5f, null, token))).ParamName);
        Assert.Equal("refiner", (await Assert.ThrowsAnyAsync<ArgumentException>(() => Refiner.GenerateWithRefinerAsync(request, Base, 0.8f, null, token))).ParamName);
        Assert.Equal("refiner", (await Assert.ThrowsAnyAsync<ArgumentException>(() => Base.GenerateWithRefinerAsync(request, Base, 0.8f, null, token))).ParamName);
        // tiny (SD 1.x) scales latents by 0.18215, tiny-sdxl by 0.13025: different latent spaces.
        var e = await Assert.ThrowsAnyAsync<ArgumentException>(() => Base.GenerateWithRefinerAsync(request, TestModels.Pipeline("tiny"), 0.8f, null, token));
        Assert.Equal("refiner", e.ParamName);
        Assert.Contains("latent spaces differ", e.Message, StringComparison.Ordinal);
        Assert.Equal("DenoisingEnd", (await Assert.ThrowsAnyAsync<ArgumentException>(() => Base.GenerateWithRefinerAsync(request with { DenoisingEnd = 0.5f }, Refiner, 0.8f, null, token))).ParamName);
    }

    private sealed class InlineProgress(Action<GenerationProgress> report) : IProgress<GenerationProgress>
    {
        public void Report(GenerationProgress value) => report(value);
    }
}
