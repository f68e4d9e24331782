using Microsoft.Playwright;

namespace LocalDiffusion.Server.Tests;

/// <summary>
/// The web UI's live preview in headless Chromium: the partial images the OpenAI API streams are decoded by the shapes
/// model's TAESD (models/shapes/taesd), and the stage says so while it shows one; /v1/models lists the preview decoder.
/// </summary>
public sealed class WebUiPreviewTests
{
    [Fact]
    public async Task The_stage_shows_TAESD_previews_while_generating()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes] });
        var models = await Json.GetAsync(server.Http, "v1/models");
        Assert.Equal("TAESD", models.GetProperty("data")[0].GetProperty("preview_decoder").GetString());

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await WebUiBrowserTests.LaunchAsync(playwright);
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 860 } });
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text); };
        await page.GotoAsync(server.Address.ToString());
        await Assertions.Expect(page.Locator("#model option")).ToHaveTextAsync("shapes");
        await page.Locator("#prompt").FillAsync("a red circle on a blue background");
        // Long enough (Heun, 150 steps at 128², as WebUiBrowserTests) that a preview is on the stage between polls.
        await page.Locator("#steps").FillAsync("150");
        await page.Locator("#scheduler").SelectOptionAsync("Heun");
        await page.Locator("#width").FillAsync("128");
        await page.Locator("#height").FillAsync("128");
        await page.Locator("#seed").FillAsync("1");
        await page.Locator("#generate").ClickAsync();
        var alts = new HashSet<string>();
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (DateTime.UtcNow < deadline && await page.Locator(".card").CountAsync() == 0)
        {
            alts.Add(await page.Locator("#preview").GetAttributeAsync("alt") ?? "");
            await Task.Delay(25);
        }
        Assert.Equal(1, await page.Locator(".card").CountAsync());
        Assert.Contains("Live preview (TAESD)", alts);
        Assert.Equal("Generated picture", await page.Locator("#preview").GetAttributeAsync("alt"));
        Assert.Empty(errors);
    }
}
