using Microsoft.Playwright;

namespace LocalDiffusion.Server.Tests;

/// <summary>
/// The web UI in a real headless Chromium (Debian's, driven by Playwright): prompt, generate, the progress bar moves,
/// the picture lands in the gallery, "reuse settings" refills the form. Screenshots at a desktop and a phone width are
/// kept in test-artifacts/ beside the test binary.
/// </summary>
public sealed class WebUiBrowserTests
{
    private const string Chromium = "/usr/bin/chromium";

    public static string ArtifactsDirectory => Path.Combine(AppContext.BaseDirectory, "test-artifacts");

    private static async Task<IBrowser> LaunchAsync(IPlaywright playwright)
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: this test drives Debian's Chromium. Install it with `apt-get install chromium`.");
        return await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Chromium,
            Headless = true,
            Args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
    }

    [Fact]
    public async Task Generate_in_the_browser_at_desktop_and_phone_width()
    {
        Directory.CreateDirectory(ArtifactsDirectory);
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes] });
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await LaunchAsync(playwright);

        // Desktop: a long generation (150 steps, the slider's maximum) so the progress bar can be seen moving.
        var desktop = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 860 } });
        var consoleErrors = new List<string>();
        desktop.Console += (_, m) => { if (m.Type == "error") consoleErrors.Add(m.Text); };
        await desktop.GotoAsync(server.Address.ToString());
        await Assertions.Expect(desktop.Locator("#model option")).ToHaveTextAsync("shapes");
        Assert.Equal("64", await desktop.Locator("#width").InputValueAsync()); // the model's native size
        Assert.True(await desktop.Locator("#scheduler option").CountAsync() > 10, "the scheduler list was not loaded from the server");

        await desktop.Locator("#prompt").FillAsync("a red circle on a blue background");
        await desktop.Locator("#steps").FillAsync("150");
        await desktop.Locator("#seed").FillAsync("1");
        await desktop.Locator("#generate").ClickAsync();
        var seen = new SortedSet<int>();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline && await desktop.Locator(".card").CountAsync() == 0)
        {
            seen.Add(int.Parse(await desktop.Locator("#progress").GetAttributeAsync("aria-valuenow") ?? "0"));
            await Task.Delay(25);
        }
        TestContext.Current.TestOutputHelper?.WriteLine("progress values seen: " + string.Join(", ", seen));
        Assert.Equal(1, await desktop.Locator(".card").CountAsync());
        Assert.True(seen.Count(v => v is > 0 and < 100) >= 2, $"the progress bar did not move: {string.Join(", ", seen)}");
        Assert.Equal("100", await desktop.Locator("#progress").GetAttributeAsync("aria-valuenow"));
        Assert.Equal(64, await desktop.Locator(".card img").EvaluateAsync<int>("img => img.naturalWidth"));
        await Assertions.Expect(desktop.Locator(".card-meta")).ToContainTextAsync("seed 1");
        await Assertions.Expect(desktop.Locator("#progress-text")).ToContainTextAsync("Done");
        await desktop.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ArtifactsDirectory, "webui-desktop.png"), FullPage = true });

        // Reuse settings brings the prompt, steps and seed back after they were changed.
        await desktop.Locator("#prompt").FillAsync("something else");
        await desktop.Locator("#seed").FillAsync("");
        await desktop.Locator("#steps").FillAsync("20");
        await desktop.Locator(".card .reuse").ClickAsync();
        Assert.Equal("a red circle on a blue background", await desktop.Locator("#prompt").InputValueAsync());
        Assert.Equal("1", await desktop.Locator("#seed").InputValueAsync());
        Assert.Equal("150", await desktop.Locator("#steps").InputValueAsync());
        Assert.Empty(consoleErrors);

        // Phone width: two quick images, then a full-page screenshot.
        var phone = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 390, Height = 844 }, DeviceScaleFactor = 2 });
        await phone.GotoAsync(server.Address.ToString());
        await Assertions.Expect(phone.Locator("#model option")).ToHaveTextAsync("shapes");
        await phone.Locator("#prompt").FillAsync("a yellow star on a purple background");
        await phone.Locator("#seed").FillAsync("2");
        await phone.Locator("#n").FillAsync("2");
        await phone.Locator("#generate").ClickAsync();
        await Assertions.Expect(phone.Locator(".card")).ToHaveCountAsync(2, new LocatorAssertionsToHaveCountOptions { Timeout = 60_000 });
        // Nothing may stick out sideways at phone width.
        Assert.True(await phone.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways at 390 px");
        await phone.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ArtifactsDirectory, "webui-phone.png"), FullPage = true });
    }

    [Fact]
    public async Task Asks_for_the_api_key_when_the_server_has_one()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Tiny], ApiKey = "sesame" });
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await LaunchAsync(playwright);
        var page = await browser.NewPageAsync();
        await page.GotoAsync(server.Address.ToString());
        await Assertions.Expect(page.Locator("#key-dialog")).ToBeVisibleAsync();
        Assert.Equal(0, await page.Locator("#model option").CountAsync());
        await page.Locator("#key-input").FillAsync("sesame");
        await page.Locator("#key-save").ClickAsync();
        await Assertions.Expect(page.Locator("#model option")).ToHaveTextAsync("tiny");
        await page.Locator("#prompt").FillAsync("x");
        await page.Locator("#width").FillAsync("64");
        await page.Locator("#height").FillAsync("64");
        await page.Locator("#steps").FillAsync("3");
        await page.Locator("#generate").ClickAsync();
        await Assertions.Expect(page.Locator(".card")).ToHaveCountAsync(1, new LocatorAssertionsToHaveCountOptions { Timeout = 30_000 });
        Assert.True(await page.Locator("#error").IsHiddenAsync());
    }
}
