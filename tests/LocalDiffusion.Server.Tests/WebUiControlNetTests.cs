using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Playwright;

namespace LocalDiffusion.Server.Tests;

/// <summary>
/// The web UI's ControlNet section in headless Chromium: hidden without <c>--controlnet-dir</c>; with one, a chosen
/// ControlNet, control image, preprocessor and scale go to /v1/images/generations in the <c>controlnets</c> extension, and
/// the card shows exactly the picture the API gives for that body. Model: models/test/tiny-controlnet.
/// </summary>
public sealed class WebUiControlNetTests
{
    private static readonly string Model = Repo.Model("test", "tiny-controlnet");

    [Fact]
    public async Task A_chosen_ControlNet_steers_the_generation_the_card_shows()
    {
        using var dir = new TempFolder();
        Directory.CreateDirectory(Path.Combine(dir.Path, "tiny-canny"));
        File.Copy(Path.Combine(Model, "controlnet", "model.onnx"), Path.Combine(dir.Path, "tiny-canny", "model.onnx"));
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Model], ControlNetDirectory = dir.Path });
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await WebUiBrowserTests.LaunchAsync(playwright);
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        var consoleErrors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") consoleErrors.Add(m.Text); };
        string? sent = null;
        page.Request += (_, r) => { if (r.Url.EndsWith("/v1/images/generations", StringComparison.Ordinal)) sent = r.PostData; };
        await page.GotoAsync(server.Address.ToString());
        await Assertions.Expect(page.Locator("#model option")).ToHaveTextAsync("tiny-controlnet");
        await Assertions.Expect(page.Locator("#controlnet-panel")).ToBeVisibleAsync();
        await page.Locator("#controlnet-panel summary").ClickAsync();
        await page.Locator("#controlnet-model").SelectOptionAsync("tiny-canny");
        await page.Locator("#prompt").FillAsync("a red circle");
        await page.Locator("#seed").FillAsync("3");
        await page.Locator("#steps").FillAsync("4");

        // Chosen but no picture: said, nothing sent.
        await page.Locator("#generate").ClickAsync();
        await Assertions.Expect(page.Locator("#error")).ToContainTextAsync("Choose a control image");
        Assert.Null(sent);

        var board = Images.Png(64, 64, (x, y) => (x / 16 + y / 16) % 2 == 0 ? ((byte)255, (byte)255, (byte)255, (byte)255) : ((byte)0, (byte)0, (byte)0, (byte)255));
        await page.Locator("#controlnet-image").SetInputFilesAsync(new FilePayload { Name = "board.png", MimeType = "image/png", Buffer = board });
        await page.Locator("#controlnet-module").SelectOptionAsync("canny");
        await page.Locator("#controlnet-weight").FillAsync("0.8");
        await page.WaitForFunctionAsync("() => controlNet.image !== null");
        await page.Locator("#generate").ClickAsync();
        await Assertions.Expect(page.Locator(".card")).ToHaveCountAsync(1, new LocatorAssertionsToHaveCountOptions { Timeout = 60_000 });
        await Assertions.Expect(page.Locator("#progress-text")).ToContainTextAsync("Done");

        Assert.NotNull(sent);
        var body = JsonNode.Parse(sent!)!.AsObject();
        var unit = body["controlnets"]![0]!;
        Assert.Equal("tiny-canny", (string)unit["model"]!);
        Assert.Equal("canny", (string)unit["module"]!);
        Assert.Equal(0.8, (double)unit["weight"]!);
        Assert.StartsWith("data:image/png;base64,", (string)unit["image"]!);
        // The same body without streaming must give the card's picture.
        body["stream"] = false;
        body.Remove("partial_images");
        body.Remove("stream_progress");
        using var replay = await server.Http.PostAsync("v1/images/generations", Json.Raw(body.ToJsonString()));
        var expected = Convert.FromBase64String((await Json.ReadAsync(replay, 200)).GetProperty("data")[0].GetProperty("b64_json").GetString()!);
        var src = await page.Locator(".card img").GetAttributeAsync("src");
        Assert.Equal(Images.Decode(expected).Rgb, Images.Decode(Convert.FromBase64String(src!.Split(',')[1])).Rgb);
        body.Remove("controlnets");
        using var plain = await server.Http.PostAsync("v1/images/generations", Json.Raw(body.ToJsonString()));
        var without = Convert.FromBase64String((await Json.ReadAsync(plain, 200)).GetProperty("data")[0].GetProperty("b64_json").GetString()!);
        Assert.NotEqual(Images.Decode(without).Rgb, Images.Decode(expected).Rgb);
        Assert.Empty(consoleErrors);
    }

    [Fact]
    public async Task Without_a_ControlNet_folder_the_section_is_hidden()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Model] });
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await WebUiBrowserTests.LaunchAsync(playwright);
        var page = await browser.NewPageAsync();
        await page.GotoAsync(server.Address.ToString());
        await Assertions.Expect(page.Locator("#model option")).ToHaveTextAsync("tiny-controlnet");
        await Assertions.Expect(page.Locator("#controlnet-panel")).ToBeHiddenAsync();
    }

    private sealed class TempFolder : IDisposable
    {
        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"ld-webui-controlnets-{Guid.NewGuid():N}");

        public TempFolder() => Directory.CreateDirectory(Path);

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
