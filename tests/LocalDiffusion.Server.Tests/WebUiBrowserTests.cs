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

    internal static async Task<IBrowser> LaunchAsync(IPlaywright playwright)
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

        // Desktop: a long generation (150 steps) so the progress bar can be seen moving.
        var desktop = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 860 } });
        var consoleErrors = new List<string>();
        desktop.Console += (_, m) => { if (m.Type == "error") consoleErrors.Add(m.Text); };
        await desktop.GotoAsync(server.Address.ToString());
        await Assertions.Expect(desktop.Locator("#model option")).ToHaveTextAsync("shapes");
        Assert.Equal("64", await desktop.Locator("#width").InputValueAsync()); // the model's native size
        Assert.True(await desktop.Locator("#scheduler option").CountAsync() > 10, "the scheduler list was not loaded from the server");

        await desktop.Locator("#prompt").FillAsync("a red circle on a blue background");
        await desktop.Locator("#steps").FillAsync("150");
        // Heun evaluates the UNet twice per step, at 128×128 four times the native pixels: seconds even with the fused
        // attention's faster steps, so the bar is seen between 0 and 100 when the browser polls slowly (both test
        // projects run at once on CI's two cores; at 64×64 it once finished between two polls).
        await desktop.Locator("#scheduler").SelectOptionAsync("Heun");
        await desktop.Locator("#width").FillAsync("128");
        await desktop.Locator("#height").FillAsync("128");
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
        Assert.Equal(128, await desktop.Locator(".card img").EvaluateAsync<int>("img => img.naturalWidth"));
        await Assertions.Expect(desktop.Locator(".card-meta")).ToContainTextAsync("seed 1");
        await Assertions.Expect(desktop.Locator("#progress-text")).ToContainTextAsync("Done");
        // 128×128 is 4× the shapes model's native area: the server's warning reaches the page.
        await Assertions.Expect(desktop.Locator("#progress-text")).ToContainTextAsync("the native area of 'shapes'");
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
        // The history's header (title, upscaler choice, clear button: all shown once there are pictures) fits its row(s)
        // at phone width: no two of its parts overlap or touch (4 px apart at least), none leaves the header, and no label
        // breaks over two lines (at 390 px they used to: "HISTORY" ran into "Upscale with", and "Clear history" wrapped).
        await Assertions.Expect(phone.Locator("#clear-gallery")).ToBeVisibleAsync();
        Assert.Equal("", await phone.EvaluateAsync<string>(HeaderOverlaps));
        await phone.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ArtifactsDirectory, "webui-phone.png"), FullPage = true });
    }

    // The gallery header's visible parts (its children, and the select inside the label) as bounding boxes: each pair that
    // overlaps or comes closer than 4 px, each part outside the header, and each text that takes two lines, named; "" when none.
    private const string HeaderOverlaps = """
        () => {
          const head = document.querySelector('.gallery-head');
          const h = head.getBoundingClientRect();
          const parts = [...head.children, head.querySelector('select')].filter(e => e && e.getClientRects().length > 0);
          const name = e => e.id || e.className || e.tagName;
          const problems = [];
          const boxes = parts.map(e => [name(e), e.getBoundingClientRect(), e]);
          for (const [n, b] of boxes)
            if (b.left < h.left - 0.5 || b.right > h.right + 0.5 || b.top < h.top - 0.5 || b.bottom > h.bottom + 0.5) problems.push(`${n} leaves the header`);
          for (let i = 0; i < boxes.length; i++)
            for (let j = i + 1; j < boxes.length; j++) {
              const [na, a, ea] = boxes[i], [nb, b, eb] = boxes[j];
              if (ea.contains(eb) || eb.contains(ea)) continue;
              if (a.left < b.right + 4 && b.left < a.right + 4 && a.top < b.bottom + 4 && b.top < a.bottom + 4) problems.push(`${na} overlaps or touches ${nb}`);
            }
          for (const e of parts)
            for (const t of [...e.childNodes].filter(c => c.nodeType === Node.TEXT_NODE && c.textContent.trim())) {
              const r = document.createRange();
              r.selectNodeContents(t);
              const lines = new Set([...r.getClientRects()].map(b => Math.round(b.top)));
              if (lines.size > 1) problems.push(`"${t.textContent.trim()}" takes ${lines.size} lines`);
            }
          return problems.join('; ');
        }
        """;

    [Fact]
    public async Task Edit_an_uploaded_image_with_a_painted_mask_at_desktop_and_phone_width()
    {
        Directory.CreateDirectory(ArtifactsDirectory);
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes] });
        // The picture to edit: the shapes model's red circle on the right (seed 2), made through the API.
        using var generated = await Json.PostAsync(server.Http, "v1/images/generations", new
        {
            prompt = "a red circle on the right on a blue background", seed = 2, response_format = "b64_json",
        });
        var sourcePng = Convert.FromBase64String((await Json.ReadAsync(generated, 200)).GetProperty("data")[0].GetProperty("b64_json").GetString()!);
        var source = Images.Decode(sourcePng);

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await LaunchAsync(playwright);
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        var consoleErrors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") consoleErrors.Add(m.Text); };
        var editRequests = 0;
        page.Request += (_, r) => { if (r.Url.EndsWith("/v1/images/edits", StringComparison.Ordinal)) editRequests++; };
        await page.GotoAsync(server.Address.ToString());
        await Assertions.Expect(page.Locator("#model option")).ToHaveTextAsync("shapes");

        await page.Locator("#tab-image").ClickAsync();
        await Assertions.Expect(page.Locator("#dropzone")).ToBeVisibleAsync();
        await page.Locator("#image-file").SetInputFilesAsync(new FilePayload { Name = "circle.png", MimeType = "image/png", Buffer = sourcePng });
        await Assertions.Expect(page.Locator("#canvas-stack")).ToBeVisibleAsync();
        Assert.Equal(64, await page.Locator("#init-canvas").EvaluateAsync<int>("c => c.width"));

        // One stroke down the left third of the picture with a big brush.
        await PaintAsync(page, [(0.2, 0.15), (0.2, 0.5), (0.25, 0.85)], brush: "60");
        Assert.True(await page.EvaluateAsync<bool>("() => maskIsPainted()"), "the stroke left no mask");

        await page.Locator("#prompt").FillAsync("a yellow star on the left on a blue background");
        await page.Locator("#seed").FillAsync("1");
        await page.Locator("#strength").FillAsync("1");
        await page.Locator("#generate").ClickAsync();
        await Assertions.Expect(page.Locator(".card")).ToHaveCountAsync(1, new LocatorAssertionsToHaveCountOptions { Timeout = 60_000 });
        await Assertions.Expect(page.Locator("#progress-text")).ToContainTextAsync("Done");
        Assert.Equal(1, editRequests);
        await Assertions.Expect(page.Locator(".card-meta")).ToContainTextAsync("strength 1 · masked");
        // The right part, far from the stroke, is the uploaded picture's (kept pixels are pasted back).
        var src = await page.Locator(".card img").GetAttributeAsync("src");
        var result = Images.Decode(Convert.FromBase64String(src!.Split(',')[1]));
        Assert.Equal((64, 64), (result.Width, result.Height));
        var kept = Images.MeanAbsolute(source.Rgb, result.Rgb, 64, 64, 40);
        Assert.True(kept <= 1, $"the unpainted right part changed by {kept:0.00} levels");
        Assert.True(Images.MeanAbsolute(source.Rgb, result.Rgb, 64, 64, 0, 20) > 5, "the painted left part did not change");
        await page.EvaluateAsync("() => window.scrollTo(0, 0)"); // the sticky top bar belongs at the top of a full-page shot
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ArtifactsDirectory, "webui-edit-desktop.png"), FullPage = true });
        Assert.Empty(consoleErrors);

        // Phone width: a text-to-image picture, then "Edit" on its card, a stroke with a finger-sized brush, and the edit.
        var phone = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 390, Height = 844 }, DeviceScaleFactor = 2 });
        await phone.GotoAsync(server.Address.ToString());
        await Assertions.Expect(phone.Locator("#model option")).ToHaveTextAsync("shapes");
        await phone.Locator("#prompt").FillAsync("a yellow star on a purple background");
        await phone.Locator("#seed").FillAsync("2");
        await phone.Locator("#generate").ClickAsync();
        await Assertions.Expect(phone.Locator(".card")).ToHaveCountAsync(1, new LocatorAssertionsToHaveCountOptions { Timeout = 60_000 });
        await phone.Locator(".card .edit").ClickAsync();
        await Assertions.Expect(phone.Locator("#canvas-stack")).ToBeVisibleAsync();
        Assert.Equal("true", await phone.Locator("#tab-image").GetAttributeAsync("aria-selected"));
        await PaintAsync(phone, [(0.5, 0.3), (0.5, 0.7)], brush: "40");
        await phone.Locator("#prompt").FillAsync("a green star on a purple background");
        await phone.Locator("#generate").ClickAsync();
        await Assertions.Expect(phone.Locator(".card")).ToHaveCountAsync(2, new LocatorAssertionsToHaveCountOptions { Timeout = 60_000 });
        Assert.True(await phone.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways at 390 px");
        await phone.EvaluateAsync("() => window.scrollTo(0, 0)");
        await phone.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ArtifactsDirectory, "webui-edit-phone.png"), FullPage = true });
    }

    /// <summary>Drags the mouse over the mask canvas through points given as fractions of its size.</summary>
    private static async Task PaintAsync(IPage page, (double X, double Y)[] points, string brush)
    {
        await page.Locator("#brush").FillAsync(brush);
        var box = await page.Locator("#mask-canvas").BoundingBoxAsync() ?? throw new InvalidOperationException("the mask canvas is not on screen");
        (float, float) At((double X, double Y) p) => ((float)(box.X + p.X * box.Width), (float)(box.Y + p.Y * box.Height));
        var (x0, y0) = At(points[0]);
        await page.Mouse.MoveAsync(x0, y0);
        await page.Mouse.DownAsync();
        foreach (var p in points.Skip(1))
        {
            var (x, y) = At(p);
            await page.Mouse.MoveAsync(x, y, new MouseMoveOptions { Steps = 8 });
        }
        await page.Mouse.UpAsync();
    }

    [Fact]
    public async Task Asks_for_the_api_key_before_anything_loads_and_says_when_a_key_is_refused()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Tiny], ApiKey = "sesame" });
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await LaunchAsync(playwright);
        var page = await browser.NewPageAsync();
        await page.GotoAsync(server.Address.ToString());
        // The prompt comes first: no form with a guessed 512×512 and an empty model list behind it.
        await Assertions.Expect(page.Locator("#key-dialog")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#key-message")).ToContainTextAsync("This server needs an API key");
        Assert.True(await page.Locator("#key-refused").IsHiddenAsync());
        Assert.True(await page.Locator("#main").IsHiddenAsync());
        Assert.Equal(0, await page.Locator("#model option").CountAsync());

        // A wrong key is told apart from a missing one.
        await page.Locator("#key-input").FillAsync("open sesame");
        await page.Locator("#key-save").ClickAsync();
        await Assertions.Expect(page.Locator("#key-refused")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#key-refused")).ToHaveTextAsync("That key was refused by the server. Check it and enter it again.");
        Assert.True(await page.Locator("#key-message").IsHiddenAsync());
        Assert.True(await page.Locator("#main").IsHiddenAsync());

        await page.Locator("#key-input").FillAsync("sesame");
        await page.Locator("#key-save").ClickAsync();
        await Assertions.Expect(page.Locator("#model option")).ToHaveTextAsync("tiny");
        await Assertions.Expect(page.Locator("#main")).ToBeVisibleAsync();
        Assert.True(await page.Locator("#key-dialog").IsHiddenAsync());
        await page.Locator("#prompt").FillAsync("x");
        await page.Locator("#width").FillAsync("64");
        await page.Locator("#height").FillAsync("64");
        await page.Locator("#steps").FillAsync("3");
        await page.Locator("#generate").ClickAsync();
        await Assertions.Expect(page.Locator(".card")).ToHaveCountAsync(1, new LocatorAssertionsToHaveCountOptions { Timeout = 30_000 });
        Assert.True(await page.Locator("#error").IsHiddenAsync());

        // The key is remembered: a reload goes straight to the form.
        await page.ReloadAsync();
        await Assertions.Expect(page.Locator("#model option")).ToHaveTextAsync("tiny");
        Assert.True(await page.Locator("#key-dialog").IsHiddenAsync());
    }
}
