using Microsoft.Playwright;

namespace LocalDiffusion.Server.Tests;

/// <summary>The web UI's hires fix section and the history's Upscale button, in headless Chromium against a real server.</summary>
public sealed class WebUiUpscaleTests
{
    [Fact]
    public async Task Hires_section_and_upscale_button()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes], UpscalerDirectory = UpscalerServer.Folder });
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await WebUiBrowserTests.LaunchAsync(playwright);
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text); };
        await page.GotoAsync(server.Address.ToString());
        await Assertions.Expect(page.Locator("#model option")).ToHaveTextAsync("shapes");
        await Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-history", "loaded");

        // The hires upscalers: A1111's latent modes, its built-ins and the --upscaler-dir models.
        await Assertions.Expect(page.Locator("#hires-upscaler option[value='tiny-esrgan-x4']")).ToHaveCountAsync(1);
        Assert.Equal("Latent", await page.Locator("#hires-upscaler").InputValueAsync());
        await page.Locator("#hires-section summary").ClickAsync();
        await page.Locator("#hires").CheckAsync();
        await page.Locator("#hires-scale").FillAsync("2");
        await page.Locator("#hires-upscaler").SelectOptionAsync("tiny-esrgan-x2");
        await page.Locator("#hires-steps").FillAsync("3");
        await page.Locator("#prompt").FillAsync("a large red circle in the center on a blue background");
        await page.Locator("#seed").FillAsync("5");
        await page.Locator("#steps").FillAsync("4");
        await page.Locator("#generate").ClickAsync();
        await Assertions.Expect(page.Locator(".card")).ToHaveCountAsync(1, new LocatorAssertionsToHaveCountOptions { Timeout = 60_000 });
        // 64×64 first pass, 128×128 result, with A1111's hires infotext.
        Assert.Equal(128, await page.Locator(".card img").EvaluateAsync<int>("img => img.naturalWidth"));
        await Assertions.Expect(page.Locator(".card-meta")).ToContainTextAsync("128x128");
        await Assertions.Expect(page.Locator(".card-meta")).ToContainTextAsync("hires ×2 tiny-esrgan-x2");
        var title = await page.Locator(".card").GetAttributeAsync("title");
        Assert.Contains("Hires upscaler: tiny-esrgan-x2", title);
        Assert.Contains("Hires steps: 3", title);
        Assert.Contains("seed 5", await page.Locator(".card-meta").TextContentAsync());

        // The Upscale button: 2× through the chosen upscaler (an --upscaler-dir model is preselected), a new history entry.
        Assert.Equal("tiny-esrgan-x2", await page.Locator("#upscaler").InputValueAsync());
        await page.Locator("#upscaler").SelectOptionAsync("tiny-esrgan-x4");
        await page.Locator(".card .upscale").ClickAsync();
        await Assertions.Expect(page.Locator(".card")).ToHaveCountAsync(2, new LocatorAssertionsToHaveCountOptions { Timeout = 60_000 });
        var newest = page.Locator(".card").First;
        Assert.Equal(256, await newest.Locator("img").EvaluateAsync<int>("img => img.naturalWidth"));
        await Assertions.Expect(newest.Locator(".card-meta")).ToContainTextAsync("upscaled by tiny-esrgan-x4");

        // Reuse settings on the hires picture brings the hires section back.
        await page.Locator("#hires").UncheckAsync();
        await page.Locator(".card").Nth(1).Locator(".reuse").ClickAsync();
        Assert.True(await page.Locator("#hires").IsCheckedAsync());
        Assert.Equal("tiny-esrgan-x2", await page.Locator("#hires-upscaler").InputValueAsync());
        Assert.Empty(errors);
    }
}
