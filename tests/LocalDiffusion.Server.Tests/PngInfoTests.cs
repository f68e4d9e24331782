using System.IO.Compression;
using System.Text;
using System.Text.Json;
using LocalDiffusion.Imaging;
using LocalDiffusion.Server.Automatic1111;

namespace LocalDiffusion.Server.Tests;

/// <summary>A1111's infotext parsing on real A1111 texts, and <c>POST /sdapi/v1/png-info</c> on PNGs this server made.</summary>
public sealed class PngInfoTests(SharedServer shared) : IClassFixture<SharedServer>
{
    private HttpClient Http => shared.Instance.Http;

    [Fact]
    public void Parses_the_classic_infotext()
    {
        var p = InfotextParser.Parse("""
            girl with an artist's beret, determined, blue eyes, desert scene, computer monitors, heavy makeup, by Alphonse Mucha and Charlie Bowater, ((eyeshadow)), (coquettish), detailed, intricate
            Negative prompt: ugly, fat, obese, chubby, (((deformed))), [blurry], bad anatomy, disfigured, poorly drawn face, mutation, mutated, (extra_limb), (ugly), (poorly drawn hands), messy drawing
            Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 965400086, Size: 512x512, Model hash: 45dee52b
            """);
        Assert.Equal(["Prompt", "Negative prompt", "Steps", "Sampler", "CFG scale", "Seed", "Size-1", "Size-2", "Model hash"], p.Keys);
        Assert.StartsWith("girl with an artist's beret,", (string)p["Prompt"]);
        Assert.EndsWith("messy drawing", (string)p["Negative prompt"]);
        Assert.Equal(20L, p["Steps"]);
        Assert.Equal("Euler a", p["Sampler"]);
        Assert.Equal(7L, p["CFG scale"]);
        Assert.Equal(965400086L, p["Seed"]);
        Assert.Equal((512L, 512L), (p["Size-1"], p["Size-2"]));
        Assert.Equal("45dee52b", p["Model hash"]);
    }

    [Fact]
    public void Parses_multi_line_prompts_quoted_values_and_hires_settings()
    {
        // As A1111 1.6 writes it with a LoRA and hires fix: a quoted value holding commas and colons.
        var p = InfotextParser.Parse("""
            masterpiece, best quality,
            1girl, solo, looking at viewer,
            <lora:add_detail:0.5>
            Negative prompt: (worst quality, low quality:1.4),
            watermark, "text"
            Steps: 28, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 3623437553, Size: 512x768, Model hash: 7f96a1a9ca, Model: anything-v5, Denoising strength: 0.45, Clip skip: 2, Hires upscale: 2, Hires resize: 1024x1536, Hires steps: 15, Hires upscaler: R-ESRGAN 4x+ Anime6B, Lora hashes: "add_detail: 7c6bad76eb54, more_details: 3b8aa1d351ef", Wildcard: "a \"quoted\" cat, on a mat", Version: v1.6.0
            """);
        Assert.Equal("masterpiece, best quality,\n1girl, solo, looking at viewer,\n<lora:add_detail:0.5>", p["Prompt"]);
        Assert.Equal("(worst quality, low quality:1.4),\nwatermark, \"text\"", p["Negative prompt"]);
        Assert.Equal(28L, p["Steps"]);
        Assert.Equal("DPM++ 2M Karras", p["Sampler"]);
        Assert.Equal(6.5, p["CFG scale"]);
        Assert.Equal(3623437553L, p["Seed"]);
        Assert.Equal((512L, 768L), (p["Size-1"], p["Size-2"]));
        Assert.Equal("anything-v5", p["Model"]);
        Assert.Equal(0.45, p["Denoising strength"]);
        Assert.Equal(2L, p["Hires upscale"]);
        Assert.Equal((1024L, 1536L), (p["Hires resize-1"], p["Hires resize-2"]));
        Assert.Equal(15L, p["Hires steps"]);
        Assert.Equal("R-ESRGAN 4x+ Anime6B", p["Hires upscaler"]);
        Assert.Equal("add_detail: 7c6bad76eb54, more_details: 3b8aa1d351ef", p["Lora hashes"]);
        Assert.Equal("a \"quoted\" cat, on a mat", p["Wildcard"]);
        Assert.Equal("v1.6.0", p["Version"]);
    }

    [Fact]
    public void Without_a_negative_prompt_or_settings_line()
    {
        var p = InfotextParser.Parse("a cat on a mat\nSteps: 4, Sampler: Euler, CFG scale: 1, Seed: 1, Size: 64x64");
        Assert.Equal("a cat on a mat", p["Prompt"]);
        Assert.Equal("", p["Negative prompt"]);
        Assert.Equal(4L, p["Steps"]);

        // Fewer than three settings: the last line is prompt text, as in A1111.
        var prose = InfotextParser.Parse("a photo of a dog\nStyle: vivid, Mood: calm\r\n");
        Assert.Equal(["Prompt", "Negative prompt"], prose.Keys);
        Assert.Equal("a photo of a dog\nStyle: vivid, Mood: calm", prose["Prompt"]);

        Assert.Equal("", InfotextParser.Parse("")["Prompt"]);
    }

    [Fact]
    public void Reads_tEXt_zTXt_and_iTXt_chunks_and_refuses_corrupt_pngs()
    {
        var png = Images.Png(8, 8, (_, _) => (10, 20, 30, 255));
        var withText = PngTextChunks.Insert(png, new Dictionary<string, string> { ["parameters"] = "a\nSteps: 1, Seed: 2, Size: 8x8", ["Comment"] = "café ☕" });
        withText = InsertChunk(withText, "zTXt", [.. "Software"u8, 0, 0, .. Deflate("LocalDiffusion"u8.ToArray())]);
        withText = InsertChunk(withText, "iTXt", [.. "Title"u8, 0, 1, 0, .. "en"u8, 0, 0, .. Deflate(Encoding.UTF8.GetBytes("Straße"))]);
        var texts = PngTextReader.Read(withText);
        Assert.Equal("a\nSteps: 1, Seed: 2, Size: 8x8", texts["parameters"]);
        Assert.Equal("café ☕", texts["Comment"]);
        Assert.Equal("LocalDiffusion", texts["Software"]);
        Assert.Equal("Straße", texts["Title"]);

        Assert.Throws<InvalidDataException>(() => PngTextReader.Read("GIF89a not a png"u8));
        Assert.Throws<InvalidDataException>(() => PngTextReader.Read(withText.AsSpan(0, withText.Length - 20)));
        var flipped = withText.ToArray();
        flipped[40] ^= 0x55; // inside the first text chunk: its CRC no longer matches
        Assert.Throws<InvalidDataException>(() => PngTextReader.Read(flipped));
    }

    [Fact]
    public async Task Png_info_round_trips_a_picture_this_server_made()
    {
        using var generated = await Json.PostAsync(Http, "v1/images/generations", new
        {
            model = "shapes", prompt = "a red circle,\non a blue background", negative_prompt = "green, yellow", steps = 3, seed = 4242,
            size = "64x64", guidance_scale = 7.5, response_format = "b64_json",
        });
        var b64 = (await Json.ReadAsync(generated, 200)).GetProperty("data")[0].GetProperty("b64_json").GetString()!;

        using var response = await Json.PostAsync(Http, "sdapi/v1/png-info", new { image = "data:image/png;base64," + b64 });
        var json = await Json.ReadAsync(response, 200);
        Assert.StartsWith("a red circle,\non a blue background\nNegative prompt: green, yellow\nSteps: 3,", json.GetProperty("info").GetString());
        Assert.Equal(JsonValueKind.Object, json.GetProperty("items").ValueKind);
        Assert.False(json.GetProperty("items").TryGetProperty("parameters", out _)); // A1111 answers it as info
        var p = json.GetProperty("parameters");
        Assert.Equal("a red circle,\non a blue background", p.GetProperty("Prompt").GetString());
        Assert.Equal("green, yellow", p.GetProperty("Negative prompt").GetString());
        Assert.Equal(3, p.GetProperty("Steps").GetInt32());
        Assert.Equal(4242, p.GetProperty("Seed").GetInt64());
        Assert.Equal(7.5, p.GetProperty("CFG scale").GetDouble());
        Assert.Equal((64, 64), (p.GetProperty("Size-1").GetInt32(), p.GetProperty("Size-2").GetInt32()));
        Assert.Equal("shapes", p.GetProperty("Model").GetString());
        Assert.Equal(JsonValueKind.String, p.GetProperty("Sampler").ValueKind);

        // Plain base64 works too; a PNG with no text answers empty fields.
        using var plain = await Json.PostAsync(Http, "sdapi/v1/png-info", new { image = Convert.ToBase64String(Images.Png(8, 8, (_, _) => (0, 0, 0, 255))) });
        var empty = await Json.ReadAsync(plain, 200);
        Assert.Equal("", empty.GetProperty("info").GetString());
        Assert.Equal("", empty.GetProperty("parameters").GetProperty("Prompt").GetString());
    }

    [Theory]
    [InlineData("not base64 at all!")]
    [InlineData("R0lGODlhAQABAAAAACw=")] // a GIF header
    [InlineData("iVBORw0KGgoAAAANSUhEUgAAAAgAAAAI")] // a PNG cut off inside IHDR
    [InlineData("")]
    public async Task Png_info_refuses_what_is_not_a_png_naming_the_image_field(string image)
    {
        using var response = await Json.PostAsync(Http, "sdapi/v1/png-info", new { image });
        var error = Json.Error(await Json.ReadAsync(response, 400));
        Assert.Equal("image", error.GetProperty("param").GetString());
        Assert.Equal("HTTPException", error.GetProperty("a1111_error").GetString());
    }

    private static byte[] Deflate(byte[] bytes)
    {
        using var output = new MemoryStream();
        using (var z = new ZLibStream(output, CompressionLevel.Optimal, leaveOpen: true)) z.Write(bytes);
        return output.ToArray();
    }

    // A chunk with a correct CRC, right after IHDR.
    private static byte[] InsertChunk(byte[] png, string type, byte[] data)
    {
        var body = Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        var crc = 0xFFFFFFFFu;
        foreach (var b in body)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++) crc = (crc & 1) != 0 ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
        }
        crc ^= 0xFFFFFFFFu;
        var chunk = new byte[12 + data.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(chunk, (uint)data.Length);
        body.CopyTo(chunk, 4);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(chunk.AsSpan(8 + data.Length), crc);
        return [.. png.AsSpan(0, 33), .. chunk, .. png.AsSpan(33)];
    }
}
