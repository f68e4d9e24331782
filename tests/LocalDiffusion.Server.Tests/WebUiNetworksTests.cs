using System.Text.Json.Nodes;
using Microsoft.Playwright;

namespace LocalDiffusion.Server.Tests;

/// <summary>
/// The web UI's extra-networks picker (wwwroot/networks.js) in headless Chromium, on tiny with the table text encoder
/// (EmbeddingsApiTests' folder), <c>--lora-dir models/test/lora</c> and <c>--embeddings-dir models/test/ti/embeddings</c>.
/// No numbers of its own: the page's picture with the picked LoRA must differ from the one without it and equal, pixel
/// for pixel, the picture the API draws for the same body with the LoRA given as the <c>loras</c> field instead of the tag.
/// </summary>
public sealed class WebUiNetworksTests
{
    private static string Artifacts => WebUiBrowserTests.ArtifactsDirectory;

    private static async Task<(IPage Page, List<string> Errors)> OpenAsync(IBrowser browser, TestServer server)
    {
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text); };
        await page.GotoAsync(server.Address.ToString());
        await Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-history", "loaded");
        await Assertions.Expect(page.Locator("#networks")).ToHaveAttributeAsync("data-state", "loaded", new LocatorAssertionsToHaveAttributeOptions { Timeout = 30_000 });
        return (page, errors);
    }

    // The newest card's picture, decoded (its src is the PNG as a data URL).
    private static async Task<byte[]> NewestPixelsAsync(IPage page)
    {
        var src = await page.Locator(".card img").First.GetAttributeAsync("src");
        return Images.Decode(Convert.FromBase64String(src!["data:image/png;base64,".Length..])).Rgb;
    }

    private static async Task<JsonObject> GenerateAsync(IPage page, int expectedCards)
    {
        var sent = page.WaitForRequestAsync(r => r.Url.EndsWith("/v1/images/generations", StringComparison.Ordinal));
        await page.Locator("#generate").ClickAsync();
        var body = JsonNode.Parse((await sent).PostData!)!.AsObject();
        await Assertions.Expect(page.Locator(".card")).ToHaveCountAsync(expectedCards, new LocatorAssertionsToHaveCountOptions { Timeout = 60_000 });
        return body;
    }

    [Fact]
    public async Task Picking_a_lora_and_a_negative_embedding_puts_their_tags_in_the_prompts_and_changes_the_picture()
    {
        Directory.CreateDirectory(Artifacts);
        await using var server = await TestServer.StartAsync(new ServerOptions
        {
            Models = [EmbeddingsApiTests.Sd15TiModel()],
            LoraDirectory = Repo.Model("test", "lora"),
            EmbeddingsDirectory = Repo.Model("test", "ti", "embeddings"),
        });
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await WebUiBrowserTests.LaunchAsync(playwright);
        var (page, errors) = await OpenAsync(browser, server);

        // Every LoRA file is offered; embeddings only the ones the model loaded (not "wide" or "xl-pair", which it skipped).
        var chips = page.Locator("#networks-list .chip");
        await Assertions.Expect(chips).ToHaveTextAsync(["kohya_bf16", "kohya_fp16", "lycoris_loha", "lycoris_lokr", "peft_fp32", "sdxl_te2", "unet_only_fp32"]);
        await page.Locator("#networks-embeddings").ClickAsync();
        await Assertions.Expect(chips).ToHaveTextAsync(["a1111-style", "cat-toy", "kohya-style", "old-paramdict", "toy-bin"]);
        await page.Locator("#networks-lora").ClickAsync();

        await page.Locator("#prompt").FillAsync("a red circle");
        await page.Locator("#seed").FillAsync("3");
        await page.Locator("#steps").FillAsync("3");
        await page.Locator("#width").FillAsync("64");
        await page.Locator("#height").FillAsync("64");
        await GenerateAsync(page, 1);
        var plain = await NewestPixelsAsync(page);

        // The weight control sets the tag's weight; a click appends the tag and marks the chip.
        await page.Locator("#networks-weight").FillAsync("0.8");
        await Assertions.Expect(page.Locator("#networks-weight-out")).ToHaveTextAsync("0.8");
        await page.Locator("#networks-filter").FillAsync("unet");
        await Assertions.Expect(chips).ToHaveTextAsync(["unet_only_fp32"]);
        await chips.First.ClickAsync();
        Assert.Equal("a red circle <lora:unet_only_fp32:0.8>", await page.Locator("#prompt").InputValueAsync());
        await Assertions.Expect(chips.First).ToHaveAttributeAsync("aria-pressed", "true");
        var sent = await GenerateAsync(page, 2);
        Assert.Equal("a red circle <lora:unet_only_fp32:0.8>", sent["prompt"]!.GetValue<string>());
        var withLora = await NewestPixelsAsync(page);
        Assert.NotEqual(plain, withLora);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Artifacts, "webui-networks-lora.png"), FullPage = true });

        // The same body through the API with the LoRA as the loras field: the same picture.
        sent["prompt"] = "a red circle";
        sent["loras"] = new JsonArray(new JsonObject { ["name"] = "unet_only_fp32", ["weight"] = 0.8 });
        sent["stream"] = false;
        sent["response_format"] = "b64_json";
        using (var response = await server.Http.PostAsync("v1/images/generations", Json.Raw(sent.ToJsonString())))
        {
            var json = await Json.ReadAsync(response, 200);
            Assert.Equal(withLora, Images.Decode(Convert.FromBase64String(json.GetProperty("data")[0].GetProperty("b64_json").GetString()!)).Rgb);
        }

        // A second click takes the tag out again.
        await chips.First.ClickAsync();
        Assert.Equal("a red circle", await page.Locator("#prompt").InputValueAsync());
        await Assertions.Expect(chips.First).ToHaveAttributeAsync("aria-pressed", "false");

        // An embedding's trigger goes into the negative prompt; the weight control is a LoRA's only.
        await page.Locator("#networks-filter").FillAsync("");
        await page.Locator("#networks-embeddings").ClickAsync();
        await Assertions.Expect(page.Locator("#networks-weight-field")).ToBeHiddenAsync();
        await page.Locator("#networks-to-negative").ClickAsync();
        await page.Locator("#negative_prompt").FillAsync("blue");
        await chips.Filter(new LocatorFilterOptions { HasText = "kohya-style" }).ClickAsync();
        Assert.Equal("blue kohya-style", await page.Locator("#negative_prompt").InputValueAsync());
        Assert.Equal("a red circle", await page.Locator("#prompt").InputValueAsync());
        sent = await GenerateAsync(page, 3);
        Assert.Equal("blue kohya-style", sent["negative_prompt"]!.GetValue<string>());
        var withEmbedding = await NewestPixelsAsync(page);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Artifacts, "webui-networks-embedding.png"), FullPage = true });

        // The negative embedding counts: without it (negative "blue" alone) the picture differs.
        await chips.Filter(new LocatorFilterOptions { HasText = "kohya-style" }).ClickAsync();
        Assert.Equal("blue", await page.Locator("#negative_prompt").InputValueAsync());
        await GenerateAsync(page, 4);
        Assert.NotEqual(withEmbedding, await NewestPixelsAsync(page));
        Assert.True(await page.Locator("#error").IsHiddenAsync());
        Assert.Empty(errors);
    }

    [Fact]
    public async Task The_picker_is_hidden_when_the_server_has_no_loras_or_embeddings()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes] });
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await WebUiBrowserTests.LaunchAsync(playwright);
        var (page, errors) = await OpenAsync(browser, server);
        await Assertions.Expect(page.Locator("#networks")).ToBeHiddenAsync();
        Assert.Empty(errors);
    }
}
