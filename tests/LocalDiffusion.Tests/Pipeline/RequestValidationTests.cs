namespace LocalDiffusion.Tests.Pipeline;

/// <summary>Bad requests are refused before any work, with the field and the expectation named.</summary>
public class RequestValidationTests
{
    public static TheoryData<string, GenerationRequest> BadRequests => new()
    {
        { "Width", TestModels.Request() with { Width = 60 } },
        { "Height", TestModels.Request() with { Height = 0 } },
        { "Steps", TestModels.Request() with { Steps = 0 } },
        { "GuidanceScale", TestModels.Request() with { GuidanceScale = float.NaN } },
        { "ImageCount", TestModels.Request() with { ImageCount = 0 } },
        { "InitialLatents", TestModels.Request() with { InitialLatents = new float[10] } },
        { "NegativePrompt", TestModels.Request() with { NegativePrompt = null! } },
    };

    [Theory]
    [MemberData(nameof(BadRequests))]
    public async Task BadFieldIsNamed(string field, GenerationRequest request)
    {
        var e = await Assert.ThrowsAnyAsync<ArgumentException>(() => TestModels.Pipeline("tiny").GenerateAsync(request));
        Assert.Equal(field, e.ParamName);
    }

    [Fact]
    public async Task StaticModelRefusesAnotherSizeAndSaysWhichItMakes()
    {
        var e = await Assert.ThrowsAnyAsync<ArgumentException>(
            () => TestModels.Pipeline("tiny-static").GenerateAsync(TestModels.Request() with { Width = 128 }));
        Assert.Contains("only makes 64x64 images", e.Message);
        Assert.Contains("128x64", e.Message);
    }

    [Fact]
    public async Task UnknownSchedulerListsTheKnownOnes()
    {
        var e = await Assert.ThrowsAnyAsync<ArgumentException>(
            () => TestModels.Pipeline("tiny").GenerateAsync(TestModels.Request() with { Scheduler = "warp_drive" }));
        Assert.Contains("warp_drive", e.Message);
        Assert.Contains("euler_a", e.Message);
    }
}
