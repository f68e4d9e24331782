using Microsoft.Playwright;

namespace LocalDiffusion.Server.Tests;

/// <summary>
/// The web UI's history (IndexedDB, across reloads), variations, PNG settings (drop or file picker, read by
/// /sdapi/v1/png-info), the queue view with its cancel buttons, size presets and keyboard-only use, in headless Chromium.
/// </summary>
public sealed class WebUiFeatureTests
{
    private static string Artifacts => WebUiBrowserTests.ArtifactsDirectory;

    /// <summary>A page on the server at the given width, failing the test on any console error.</summary>
    private static async Task<(IPage Page, List<string> ConsoleErrors)> OpenAsync(IBrowser browser, TestServer server, int width = 1280, int height = 860)
    {
        var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = width, Height = height } });
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text); };
        await page.GotoAsync(server.Address.ToString());
        await ReadyAsync(page);
        return (page, errors);
    }

    // The models are listed and the history has been read back.
    private static async Task ReadyAsync(IPage page)
    {
        await Assertions.Expect(page.Locator("#model option")).ToHaveTextAsync("shapes");
        await Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-history", "loaded");
    }

    private static async Task GenerateAsync(IPage page, string prompt, int seed, int expectedCards)
    {
        await page.Locator("#prompt").FillAsync(prompt);
        await page.Locator("#seed").FillAsync(seed.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await page.Locator("#steps").FillAsync("4");
        await page.Locator("#generate").ClickAsync();
        await Assertions.Expect(page.Locator(".card")).ToHaveCountAsync(expectedCards, new LocatorAssertionsToHaveCountOptions { Timeout = 60_000 });
    }

    [Fact]
    public async Task History_survives_a_reload_and_entries_can_be_deleted_or_cleared()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes] });
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await WebUiBrowserTests.LaunchAsync(playwright);
        var (page, errors) = await OpenAsync(browser, server);

        await GenerateAsync(page, "a red circle kept in history", 5, 1);
        await page.ReloadAsync();
        await ReadyAsync(page);
        await Assertions.Expect(page.Locator(".card")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator(".card-prompt")).ToHaveTextAsync("a red circle kept in history");
        await Assertions.Expect(page.Locator(".card-meta")).ToContainTextAsync("seed 5");
        Assert.Equal(64, await page.Locator(".card img").EvaluateAsync<int>("img => img.naturalWidth"));
        // Reuse settings works on a card read back from the history.
        await page.Locator("#prompt").FillAsync("");
        await page.Locator(".card .reuse").ClickAsync();
        Assert.Equal("a red circle kept in history", await page.Locator("#prompt").InputValueAsync());

        await page.Locator(".card .delete").ClickAsync();
        await Assertions.Expect(page.Locator(".card")).ToHaveCountAsync(0);
        await page.ReloadAsync();
        await ReadyAsync(page);
        Assert.Equal(0, await page.Locator(".card").CountAsync());

        // "Clear history" empties it for good.
        await page.Locator("#n").FillAsync("2");
        await GenerateAsync(page, "two blue squares", 6, 2);
        await page.Locator("#clear-gallery").ClickAsync();
        await Assertions.Expect(page.Locator(".card")).ToHaveCountAsync(0);
        await page.ReloadAsync();
        await ReadyAsync(page);
        Assert.Equal(0, await page.Locator(".card").CountAsync());
        Assert.Empty(errors);
    }

    [Fact]
    public async Task Variations_button_sends_the_picture_to_the_variations_api()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes] });
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await WebUiBrowserTests.LaunchAsync(playwright);
        var (page, errors) = await OpenAsync(browser, server);
        await GenerateAsync(page, "a yellow star", 3, 1);

        // Chromium does not show a Blob-holding body to Playwright: the page's fetch notes the form's fields instead.
        await page.EvaluateAsync("""
            () => {
              const send = window.fetch;
              window.sentForms = [];
              window.fetch = (url, options) => {
                if (options?.body instanceof FormData)
                  window.sentForms.push({ url, fields: [...options.body.entries()].map(([k, v]) => typeof v === "string" ? `${k}=${v}` : `${k}=file ${v.name} ${v.type} ${v.size > 8}`) });
                return send(url, options);
              };
            }
            """);
        var request = page.WaitForRequestAsync(r => r.Url.EndsWith("/v1/images/variations", StringComparison.Ordinal));
        await page.Locator(".card .variations").ClickAsync();
        var sent = await request;
        Assert.StartsWith("multipart/form-data", sent.Headers["content-type"], StringComparison.Ordinal);
        var fields = await page.EvaluateAsync<string[]>("() => window.sentForms[0].fields");
        Assert.Contains("image=file image.png image/png true", fields);
        foreach (var field in new[] { "n=1", "size=64x64", "response_format=b64_json", "model=shapes" })
            Assert.Contains(field, fields);

        await Assertions.Expect(page.Locator(".card")).ToHaveCountAsync(2, new LocatorAssertionsToHaveCountOptions { Timeout = 60_000 });
        await Assertions.Expect(page.Locator(".card").First.Locator(".card-meta")).ToContainTextAsync("64x64 · variation");
        await Assertions.Expect(page.Locator(".card").First.Locator(".card-prompt")).ToHaveTextAsync("a yellow star");
        Assert.True(await page.Locator("#error").IsHiddenAsync());
        Assert.Empty(errors);
    }

    [Fact]
    public async Task A_png_dropped_or_chosen_offers_its_settings_at_desktop_and_phone_width()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes] });
        using var made = await Json.PostAsync(server.Http, "v1/images/generations", new
        {
            prompt = "a green triangle,\non a white background", negative_prompt = "red", steps = 7, seed = 99, guidance_scale = 6,
            size = "64x64", scheduler = "euler", response_format = "b64_json",
        });
        var b64 = (await Json.ReadAsync(made, 200)).GetProperty("data")[0].GetProperty("b64_json").GetString()!;
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await WebUiBrowserTests.LaunchAsync(playwright);
        var (page, errors) = await OpenAsync(browser, server);
        var pngInfoCalls = 0;
        page.Request += (_, r) => { if (r.Url.EndsWith("/sdapi/v1/png-info", StringComparison.Ordinal) && r.Headers["content-type"] == "application/json") pngInfoCalls++; };

        // Dropped anywhere on the page.
        var dataTransfer = await page.EvaluateHandleAsync("""
            b64 => {
              const dt = new DataTransfer();
              dt.items.add(new File([Uint8Array.from(atob(b64), c => c.charCodeAt(0))], "dropped.png", { type: "image/png" }));
              return dt;
            }
            """, b64);
        await page.DispatchEventAsync("#stage", "dragenter", new { dataTransfer });
        await Assertions.Expect(page.Locator("#drop-overlay")).ToBeVisibleAsync();
        await page.DispatchEventAsync("#stage", "drop", new { dataTransfer });
        await Assertions.Expect(page.Locator("#png-info")).ToBeVisibleAsync();
        Assert.True(await page.Locator("#drop-overlay").IsHiddenAsync());
        await Assertions.Expect(page.Locator("#png-info-name")).ToHaveTextAsync("dropped.png");
        var list = page.Locator("#png-info-list");
        await Assertions.Expect(list).ToContainTextAsync("a green triangle,\non a white background");
        foreach (var text in new[] { "Steps7", "Seed99", "CFG scale6", "Size64×64", "Modelshapes" })
            await Assertions.Expect(list).ToContainTextAsync(text);
        await page.Locator("#png-info-apply").ClickAsync();
        Assert.True(await page.Locator("#png-info").IsHiddenAsync());
        Assert.Equal("a green triangle,\non a white background", await page.Locator("#prompt").InputValueAsync());
        Assert.Equal("red", await page.Locator("#negative_prompt").InputValueAsync());
        Assert.Equal(("7", "99", "6"), (await page.Locator("#steps").InputValueAsync(), await page.Locator("#seed").InputValueAsync(), await page.Locator("#guidance").InputValueAsync()));
        Assert.Equal("Euler", await page.Locator("#scheduler").InputValueAsync());
        Assert.Equal(1, pngInfoCalls);

        // The file picker, from the keyboard, at phone width; a PNG without settings says so.
        var phone = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 390, Height = 844 }, DeviceScaleFactor = 2 });
        await phone.GotoAsync(server.Address.ToString());
        await ReadyAsync(phone);
        var chooser = phone.WaitForFileChooserAsync();
        await phone.Locator("#info-open").FocusAsync();
        await phone.Keyboard.PressAsync("Enter");
        await (await chooser).SetFilesAsync(new FilePayload { Name = "made.png", MimeType = "image/png", Buffer = Convert.FromBase64String(b64) });
        await Assertions.Expect(phone.Locator("#png-info-list")).ToContainTextAsync("Seed99");
        Assert.Equal("png-info-apply", await phone.EvaluateAsync<string>("() => document.activeElement.id"));
        Assert.True(await phone.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= window.innerWidth"), "the page scrolls sideways at 390 px");
        await phone.Locator("#png-info").ScrollIntoViewIfNeededAsync();
        await phone.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Artifacts, "webui-png-info-phone.png") });
        await phone.Locator("#info-file").SetInputFilesAsync(new FilePayload { Name = "plain.png", MimeType = "image/png", Buffer = Images.Png(8, 8, (_, _) => (1, 2, 3, 255)) });
        await Assertions.Expect(phone.Locator("#png-info-empty")).ToBeVisibleAsync();
        Assert.True(await phone.Locator("#png-info-apply").IsHiddenAsync());
        Assert.Empty(errors);
    }

    [Fact]
    public async Task Queue_view_shows_each_jobs_place_in_the_server_queue_and_cancels_one()
    {
        Directory.CreateDirectory(Artifacts);
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes], MaxQueue = 4, Concurrency = 1 });
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await WebUiBrowserTests.LaunchAsync(playwright);
        var (page, errors) = await OpenAsync(browser, server);

        // Another client's long generation holds the one slot, so the page's jobs wait behind it.
        using var blockerRequest = new HttpRequestMessage(HttpMethod.Post, "v1/images/generations")
        {
            Content = Json.Body(new { model = "shapes", prompt = "someone else's", steps = 1000, scheduler = "euler", response_format = "b64_json" }),
            Headers = { { "X-LocalDiffusion-Job-Id", "other-client" } },
        };
        var blocker = server.Http.SendAsync(blockerRequest);
        await server.WaitForHealthAsync(h => h.GetProperty("queue").GetProperty("running").GetInt32() == 1, "the other client's generation to start");

        await page.Locator("#prompt").FillAsync("first queued circle");
        await page.Locator("#steps").FillAsync("2");
        await page.Locator("#generate").ClickAsync();
        await page.Locator("#prompt").FillAsync("second queued circle");
        await page.Locator("#generate").ClickAsync(); // while the first still waits
        var items = page.Locator("#queue-list li");
        await Assertions.Expect(items).ToHaveCountAsync(2);
        await Assertions.Expect(items.Nth(0)).ToContainTextAsync("first queued circle");
        await Assertions.Expect(items.Nth(0)).ToContainTextAsync("Waiting · number 1 in the server's queue");
        await Assertions.Expect(items.Nth(1)).ToContainTextAsync("Waiting · number 2 in the server's queue");
        await page.EvaluateAsync("() => window.scrollTo(0, 0)");
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(Artifacts, "webui-queue-desktop.png"), FullPage = true });

        var deletes = new List<string>();
        page.Request += (_, r) => { if (r.Method == "DELETE") deletes.Add(new Uri(r.Url).AbsolutePath); };
        await items.Nth(0).Locator(".queue-cancel").ClickAsync();
        await Assertions.Expect(items).ToHaveCountAsync(1);
        await Assertions.Expect(items.Nth(0)).ToContainTextAsync("second queued circle");
        await Assertions.Expect(items.Nth(0)).ToContainTextAsync("Waiting · number 1 in the server's queue");
        await Assertions.Expect(page.Locator("#progress-text")).ToHaveTextAsync("Cancelled.");
        Assert.True(await page.Locator("#error").IsHiddenAsync());
        Assert.Single(deletes);
        Assert.StartsWith("/v1/queue/ui-", deletes[0], StringComparison.Ordinal);

        // The other client's job ends; the page's remaining job runs and lands in the gallery; the queue view empties.
        using (var cancelled = await server.Http.DeleteAsync("v1/queue/other-client")) await Json.ReadAsync(cancelled, 200);
        (await blocker).Dispose();
        await Assertions.Expect(page.Locator(".card")).ToHaveCountAsync(1, new LocatorAssertionsToHaveCountOptions { Timeout = 60_000 });
        await Assertions.Expect(page.Locator(".card-prompt")).ToHaveTextAsync("second queued circle");
        await Assertions.Expect(page.Locator("#queue")).ToBeHiddenAsync();
        // Chromium logs the cancelled job's 409 as a failed resource: that one is expected.
        Assert.DoesNotContain(errors, e => !e.Contains("409", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Keyboard_only_size_presets_and_steps_up_to_1000()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes] });
        using var playwright = await Playwright.CreateAsync();
        await using var browser = await WebUiBrowserTests.LaunchAsync(playwright);
        var (page, errors) = await OpenAsync(browser, server);

        // Presets from the model's native 64×64: the same area at common aspect ratios, in multiples of 8.
        var presets = await page.Locator("#size-preset option").AllTextContentsAsync();
        Assert.Equal(["Custom", "Native · 64×64", "4:3 · 72×56", "3:4 · 56×72", "3:2 · 80×56", "2:3 · 56×80", "16:9 · 88×48", "9:16 · 48×88"], presets);
        Assert.Equal("64x64", await page.Locator("#size-preset").InputValueAsync());
        await page.Locator("#size-preset").SelectOptionAsync("88x48");
        Assert.Equal(("88", "48"), (await page.Locator("#width").InputValueAsync(), await page.Locator("#height").InputValueAsync()));
        await page.Locator("#width").FillAsync("100");
        Assert.Equal("", await page.Locator("#size-preset").InputValueAsync()); // custom
        await page.Locator("#size-preset").SelectOptionAsync("64x64");
        Assert.Equal("1000", await page.Locator("#steps").GetAttributeAsync("max"));
        await page.Locator("#steps").FillAsync("1000");
        Assert.True(await page.Locator("#steps").EvaluateAsync<bool>("e => e.checkValidity()"));
        await page.Locator("#steps").FillAsync("3");

        // From the top of the page: Tab to the prompt, type, Ctrl+Enter.
        await page.EvaluateAsync("() => { document.activeElement?.blur(); window.scrollTo(0, 0); }");
        var tabs = 0;
        var sawFocusRing = false;
        while (await page.EvaluateAsync<string>("() => document.activeElement?.id ?? ''") != "prompt")
        {
            Assert.True(++tabs <= 12, "the prompt is not reached with Tab");
            await page.Keyboard.PressAsync("Tab");
            // Every button on the way shows where the focus is.
            if (await page.EvaluateAsync<bool>("() => document.activeElement?.tagName === 'BUTTON'"))
            {
                Assert.NotEqual("none", await page.EvaluateAsync<string>("() => getComputedStyle(document.activeElement).outlineStyle"));
                sawFocusRing = true;
            }
        }
        Assert.True(sawFocusRing, "no button was passed on the way to the prompt");
        await page.Keyboard.TypeAsync("a red circle typed from the keyboard");
        await page.Keyboard.PressAsync("Control+Enter");
        await Assertions.Expect(page.Locator(".card")).ToHaveCountAsync(1, new LocatorAssertionsToHaveCountOptions { Timeout = 60_000 });
        await Assertions.Expect(page.Locator(".card-prompt")).ToHaveTextAsync("a red circle typed from the keyboard");
        Assert.Equal("prompt", await page.EvaluateAsync<string>("() => document.activeElement.id"));
        Assert.Empty(errors);
    }

    [Fact]
    public async Task Controls_follow_the_chosen_models_family()
    {
        var folder = Directory.CreateTempSubdirectory("ld-ui-families-").FullName;
        try
        {
            var turbo = Path.Combine(folder, "sd-turbo-tiny");
            foreach (var file in Directory.EnumerateFiles(Repo.Tiny, "*", SearchOption.AllDirectories))
            {
                var target = Path.Combine(turbo, Path.GetRelativePath(Repo.Tiny, file));
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.Copy(file, target);
            }
            await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes, turbo, Repo.Model("test", "tiny-lcm")] });
            using var playwright = await Playwright.CreateAsync();
            await using var browser = await WebUiBrowserTests.LaunchAsync(playwright);
            var page = await browser.NewPageAsync();
            var errors = new List<string>();
            page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text); };
            await page.GotoAsync(server.Address.ToString());
            await Assertions.Expect(page.Locator("#model option")).ToHaveCountAsync(3);

            async Task<(string Steps, string Guidance, bool NegativeShown, bool NegativeEnabled)> ChooseAsync(string model)
            {
                await page.Locator("#model").SelectOptionAsync(model);
                return (await page.Locator("#steps").InputValueAsync(), await page.Locator("#guidance").InputValueAsync(),
                    await page.Locator("#negative_prompt").IsVisibleAsync(), await page.Locator("#negative_prompt").IsEnabledAsync());
            }
            // Turbo: one unguided step, so the negative prompt would do nothing (it says so); LCM: embedded guidance, none at all.
            Assert.Equal(("1", "0", true, false), await ChooseAsync("sd-turbo-tiny"));
            await Assertions.Expect(page.Locator("#negative-hint")).ToBeVisibleAsync();
            Assert.Equal(("4", "8.5", false, false), await ChooseAsync("tiny-lcm"));
            Assert.Equal(("20", "7.5", true, true), await ChooseAsync("shapes"));
            await Assertions.Expect(page.Locator("#negative-hint")).ToBeHiddenAsync();
            // Raising Turbo's guidance above 1 brings the negative prompt back.
            await ChooseAsync("sd-turbo-tiny");
            await page.Locator("#guidance").FillAsync("3");
            Assert.True(await page.Locator("#negative_prompt").IsEnabledAsync());
            Assert.Empty(errors);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
