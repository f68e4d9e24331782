using Microsoft.SemanticKernel;
using Microsoft.SemanticKernel.Connectors.OpenAI;
using Microsoft.SemanticKernel.Services;
using Microsoft.SemanticKernel.TextToImage;

namespace LocalDiffusion.Server.Tests.SemanticKernel;

/// <summary>
/// Semantic Kernel generating with LocalDiffusion both ways: in process (AddLocalDiffusionTextToImage) and through SK's
/// own OpenAI text-to-image connector pointed at a running server. Each image must be a PNG of the size asked for
/// (the shapes model draws 64×64 natively; the server's default cap is 4× that area, so 128×64 and 128×128 are allowed).
/// </summary>
public sealed class SemanticKernelTests
{
    private static (int Width, int Height) SizeOf(byte[] png)
    {
        Assert.True(Images.IsPng(png), "not a PNG");
        var (w, h, _) = Images.Decode(png);
        return (w, h);
    }

    [Fact]
    public async Task In_process_service_generates_PNGs_of_the_requested_size()
    {
        var kernel = Kernel.CreateBuilder()
            .AddLocalDiffusionTextToImage(Repo.Shapes, new PipelineOptions { Device = "cpu" })
            .Build();
        var service = kernel.GetRequiredService<ITextToImageService>();
        Assert.Equal("shapes", service.GetModelId());

        var settings = new PromptExecutionSettings
        {
            ExtensionData = new Dictionary<string, object> { ["width"] = 128, ["height"] = 64, ["steps"] = 2, ["seed"] = 7, ["n"] = 2 },
        };
        var images = await service.GetImageContentsAsync(new TextContent("a red circle"), settings, kernel);
        Assert.Equal(2, images.Count);
        foreach (var image in images)
        {
            Assert.Equal("image/png", image.MimeType);
            Assert.Equal((128, 64), SizeOf(image.Data!.Value.ToArray()));
        }

        // SK's OpenAI settings class (typed Size) works with the in-process service too.
        var openAiSettings = new OpenAITextToImageExecutionSettings { Size = (64, 128) };
        var tall = await service.GetImageContentsAsync(new TextContent("a blue square"), openAiSettings, kernel);
        Assert.Equal((64, 128), SizeOf(Assert.Single(tall).Data!.Value.ToArray()));

        // SK's settings deserialised from JSON (as prompt templates carry them) arrive as JsonElements.
        var fromJson = System.Text.Json.JsonSerializer.Deserialize<PromptExecutionSettings>("""{ "width": 64, "height": 64, "steps": 1 }""");
        var json = await service.GetImageContentsAsync(new TextContent("a green triangle"), fromJson, kernel);
        Assert.Equal((64, 64), SizeOf(Assert.Single(json).Data!.Value.ToArray()));
        (service as IDisposable)?.Dispose();
    }

    [Fact]
    public async Task SKs_OpenAI_connector_generates_through_a_running_server()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes] });
        // SK's connector takes its endpoint from the HttpClient's BaseAddress; without a model id it sends
        // "gpt-image-1", which the server takes as its default model (and answers with b64_json, as OpenAI does for it).
        var sent = new List<string>();
        using var http = new HttpClient(new Recorder(sent) { InnerHandler = new HttpClientHandler() }) { BaseAddress = new Uri(server.Address, "v1/"), Timeout = TimeSpan.FromSeconds(60) };
        var kernel = Kernel.CreateBuilder()
            .AddOpenAITextToImage(apiKey: "unused", httpClient: http)
            .Build();
        var service = kernel.GetRequiredService<ITextToImageService>();

        // Bytes: the PNG comes back inline.
        var bytes = await service.GetImageContentsAsync(new TextContent("a red circle"),
            new OpenAITextToImageExecutionSettings { Size = (128, 128), ResponseFormat = "b64_json" }, kernel);
        Assert.Equal((128, 128), SizeOf(Assert.Single(bytes).Data!.Value.ToArray()));

        // What SK's connector sends: its default model, the size as "WxH" (any size: the SDK does not check it), the format.
        var body = System.Text.Json.JsonDocument.Parse(Assert.Single(sent)).RootElement;
        Assert.Equal("gpt-image-1", body.GetProperty("model").GetString());
        Assert.Equal("128x128", body.GetProperty("size").GetString());
        Assert.Equal("b64_json", body.GetProperty("response_format").GetString());

        // URL: an image URL on the server, fetched as any client would.
        var linked = await service.GetImageContentsAsync(new TextContent("a blue square"),
            new OpenAITextToImageExecutionSettings { Size = (128, 64), ResponseFormat = "url" }, kernel);
        var url = Assert.Single(linked).Uri!;
        Assert.StartsWith(new Uri(server.Address, "v1/images/files/").ToString(), url.ToString());
        Assert.Equal((128, 64), SizeOf(await server.Http.GetByteArrayAsync(url)));
    }

    /// <summary>Passes every request on unchanged, keeping a copy of its body: what SK's connector really sends.</summary>
    private sealed class Recorder(List<string> bodies) : DelegatingHandler
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (request.Content is not null) bodies.Add(await request.Content.ReadAsStringAsync(cancellationToken));
            return await base.SendAsync(request, cancellationToken);
        }
    }
}
