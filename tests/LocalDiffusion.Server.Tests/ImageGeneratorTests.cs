using LocalDiffusion.Pipeline;
using System.Drawing;
using LocalDiffusion.Integration;
using Microsoft.Extensions.AI;

namespace LocalDiffusion.Server.Tests;

/// <summary>
/// Microsoft.Extensions.AI's <see cref="IImageGenerator"/>: OpenAI's adapter pointed at the server, and LocalDiffusion's own
/// in-process generator, used by the same code.
/// </summary>
public sealed class ImageGeneratorTests(SharedServer shared) : IClassFixture<SharedServer>
{
    // What an application written against the abstraction does; it does not know which generator it has.
    private static async Task<List<DataContent>> Draw(IImageGenerator generator, string prompt, int count)
    {
        var response = await generator.GenerateImagesAsync(prompt, new ImageGenerationOptions
        {
            Count = count,
            ImageSize = new Size(64, 64),
            MediaType = "image/png",
            ResponseFormat = ImageGenerationResponseFormat.Data,
        });
        return response.Contents.OfType<DataContent>().ToList();
    }

    [Fact]
    public async Task OpenAi_adapter_against_the_server()
    {
        using var generator = OpenAiSdkTests.Client(shared.Instance.Address, "tiny").AsIImageGenerator();
        var images = await Draw(generator, "a red circle on a blue background", 2);
        Assert.Equal(2, images.Count);
        Assert.All(images, image =>
        {
            Assert.Equal("image/png", image.MediaType);
            Assert.Equal((64, 64), (Images.Decode(image.Data.ToArray()).Width, Images.Decode(image.Data.ToArray()).Height));
        });
    }

    [Fact]
    public async Task OpenAi_adapter_edits_through_the_server()
    {
        // EditImageAsync goes to /v1/images/edits (multipart) through the OpenAI SDK; no size: the picture's own.
        using var generator = OpenAiSdkTests.Client(shared.Instance.Address, "tiny").AsIImageGenerator();
        var response = await generator.EditImageAsync(new DataContent(Images.Picture(96, 64), "image/png") { Name = "picture.png" },
            "a yellow star", new ImageGenerationOptions { ResponseFormat = ImageGenerationResponseFormat.Data, MediaType = "image/png" });
        var image = Assert.Single(response.Contents.OfType<DataContent>());
        Assert.Equal((96, 64), (Images.Decode(image.Data.ToArray()).Width, Images.Decode(image.Data.ToArray()).Height));
        Assert.Contains("Denoising strength: 0.8", Images.PngText(image.Data.ToArray(), "parameters"));
    }

    [Fact]
    public async Task In_process_generator_edits_as_the_openai_adapter_does()
    {
        // The same EditImageAsync call as against OpenAI: a picture in, img2img at strength 0.8 at the picture's size;
        // a picture whose left half is transparent repaints that half (strength 1) and keeps the right half exactly.
        using var pipeline = StableDiffusionPipeline.Load(Repo.Tiny, new PipelineOptions { Device = "cpu" });
        using IImageGenerator generator = new LocalDiffusionImageGenerator(pipeline);
        var options = new ImageGenerationOptions { MediaType = "image/png", AdditionalProperties = new() { ["seed"] = 3, ["steps"] = 4 } };

        var whole = Assert.Single((await generator.EditImageAsync(new DataContent(Images.Picture(96, 64), "image/png"), "a yellow star", options))
            .Contents.OfType<DataContent>()).Data.ToArray();
        Assert.Equal((96, 64), (Images.Decode(whole).Width, Images.Decode(whole).Height));
        Assert.Contains("Denoising strength: 0.8", Images.PngText(whole, "parameters"));

        var opaque = Images.Decode(Images.Picture(64, 64)).Rgb;
        var halfTransparent = Images.Png(64, 64, (x, y) => x < 32 ? ((byte)0, (byte)0, (byte)0, (byte)0)
            : (opaque[(y * 64 + x) * 3], opaque[(y * 64 + x) * 3 + 1], opaque[(y * 64 + x) * 3 + 2], (byte)255));
        var edited = Assert.Single((await generator.EditImageAsync(new DataContent(halfTransparent, "image/png"), "a yellow star", options))
            .Contents.OfType<DataContent>()).Data.ToArray();
        Assert.Contains("Denoising strength: 1", Images.PngText(edited, "parameters"));
        Assert.Equal(0, Images.MeanAbsolute(opaque, Images.Decode(edited).Rgb, 64, 64, fromColumn: 32));

        var notAPicture = new DataContent(new byte[] { 1, 2, 3 }, "image/png") { Name = "junk.png" };
        var e = await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() => generator.EditImageAsync(notAPicture, "x", options));
        Assert.Contains("junk.png", e.Message);
    }

    [Fact]
    public async Task In_process_generator()
    {
        using var pipeline = StableDiffusionPipeline.Load(Repo.Tiny, new PipelineOptions { Device = "cpu" });
        using IImageGenerator generator = new LocalDiffusionImageGenerator(pipeline);
        var images = await Draw(generator, "a red circle on a blue background", 2);
        Assert.Equal(2, images.Count);
        Assert.All(images, image => Assert.Equal((64, 64), (Images.Decode(image.Data.ToArray()).Width, Images.Decode(image.Data.ToArray()).Height)));
        Assert.Equal("tiny", generator.GetService<ImageGeneratorMetadata>()?.DefaultModelId);

        // Extensions through AdditionalProperties; the same seed gives the same picture.
        var options = new ImageGenerationOptions
        {
            ImageSize = new Size(64, 64),
            MediaType = "image/webp",
            AdditionalProperties = new() { ["seed"] = 5, ["steps"] = 3, ["scheduler"] = "euler", ["negative_prompt"] = "blurry" },
        };
        var a = (DataContent)(await generator.GenerateImagesAsync("x", options)).Contents[0];
        var b = (DataContent)(await generator.GenerateImagesAsync("x", options)).Contents[0];
        Assert.Equal("image/webp", a.MediaType);
        Assert.Equal(Images.Decode(a.Data.ToArray()).Rgb, Images.Decode(b.Data.ToArray()).Rgb);
        Assert.Contains("Sampler: Euler", (string)a.AdditionalProperties!["parameters"]!);

        await Assert.ThrowsAsync<LocalDiffusion.Errors.InvalidRequestException>(() => generator.GenerateImagesAsync("x", new ImageGenerationOptions { MediaType = "image/gif" }));
    }
}
