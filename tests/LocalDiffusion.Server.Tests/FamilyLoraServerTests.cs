namespace LocalDiffusion.Server.Tests;

/// <summary>
/// LoRAs on a FLUX model served over the OpenAI route (<c>loras</c> field and <c>&lt;lora:NAME&gt;</c> tag) with
/// <c>--lora-dir models/test/lora</c> (tools/build_flow_lora_test_files.py; FamilyLoraTests shows the files equal the
/// torch-merged model within 1e-4 of latent scale). No numbers of their own: the field and the tag give the same pixels,
/// the LoRA changes them, and no LoRA afterwards gives the pixels of before. /sdapi/v1/loras then lists the FLUX files
/// and leaves out the SD 1.x ones (their keys change a UNet).
/// </summary>
public sealed class FamilyLoraServerTests
{
    private static async Task<byte[]> PixelsAsync(TestServer server, string prompt, object? loras)
    {
        object body = loras is null
            ? new { model = "tiny-flux-dev", prompt, size = "64x64", seed = 3, steps = 3, response_format = "b64_json" }
            : new { model = "tiny-flux-dev", prompt, size = "64x64", seed = 3, steps = 3, response_format = "b64_json", loras };
        var json = await Json.ReadAsync(await Json.PostAsync(server.Http, "v1/images/generations", body), 200);
        var png = Convert.FromBase64String(json.GetProperty("data")[0].GetProperty("b64_json").GetString()!);
        return Images.Decode(png).Rgb;
    }

    [Fact]
    public async Task A_flux_lora_applies_through_the_field_and_the_tag_and_the_listing_fits_the_model()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Model("test", "tiny-flux-dev")], LoraDirectory = Repo.Model("test", "lora") });
        var plain = await PixelsAsync(server, "a red circle", null);
        var field = await PixelsAsync(server, "a red circle", new[] { new { name = "flux_kohya_fp16", weight = 1.0 } });
        var tag = await PixelsAsync(server, "a red circle <lora:flux_kohya_fp16:1>", null);
        Assert.NotEqual(plain, field);
        Assert.Equal(field, tag);
        Assert.Equal(plain, await PixelsAsync(server, "a red circle", Array.Empty<object>()));

        var names = (await Json.GetAsync(server.Http, "sdapi/v1/loras")).EnumerateArray().Select(l => l.GetProperty("name").GetString()).ToList();
        Assert.Contains("flux_kohya_fp16", names);
        Assert.Contains("flux_peft_fp32", names);
        Assert.DoesNotContain("kohya_fp16", names);
        Assert.DoesNotContain("peft_fp32", names);
    }

    [Fact]
    public async Task An_sd15_lora_on_flux_is_a_400_naming_the_file()
    {
        // The file is a good LoRA for another model: the client's choice (400, model_incompatible), not a server failure.
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Model("test", "tiny-flux-dev")], LoraDirectory = Repo.Model("test", "lora") });
        var response = await Json.PostAsync(server.Http, "v1/images/generations",
            new { model = "tiny-flux-dev", prompt = "a red circle <lora:kohya_fp16>", size = "64x64", seed = 3, steps = 3, response_format = "b64_json" });
        var error = Json.Error(await Json.ReadAsync(response, 400));
        Assert.Equal("model_incompatible", error.GetProperty("code").GetString());
        var message = error.GetProperty("message").GetString()!;
        Assert.Contains("kohya_fp16.safetensors", message);
        Assert.Contains("SD 1.x/2.x/XL UNet", message);
    }
}
