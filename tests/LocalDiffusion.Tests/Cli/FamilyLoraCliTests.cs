namespace LocalDiffusion.Tests.Cli;

/// <summary>
/// <c>generate --lora PATH[:WEIGHT]</c> and <c>&lt;lora:NAME&gt;</c> with <c>--lora-dir</c> on tiny-flux-dev, with the LoRA
/// files of tools/build_flow_lora_test_files.py. Expected pictures come from the torch-merged model
/// (models/test/lora-merged/flux-dev laid over tiny-flux-dev; FamilyLoraTests shows its latents equal the engine's
/// within 1e-4 of latent scale), so the PNGs' pixels may differ by one level where a value rounds the other way. A LoRA
/// for SD 1.x is a model-format error (exit 2) naming the file.
/// </summary>
public sealed class FamilyLoraCliTests
{
    private static string Lora(string name) => Path.Combine(TestPaths.ModelsDir, "test", "lora", name);

    private static string[] Common(string model, string prompt, string output) =>
        ["generate", "--model", model, "--prompt", prompt, "--steps", "3", "--seed", "5", "--device", "cpu", "--width", "64", "--height", "64", "--out", output];

    private static int Largest(byte[] a, byte[] b) => a.Zip(b).Max(p => Math.Abs(p.First - p.Second));

    [Fact]
    public async Task AFluxLoraFromTheFlagOrThePromptDrawsTheMergedModelsPicture()
    {
        using var dir = new TempDirectory();
        using var merged = TestModels.CopyOf("tiny-flux-dev");
        foreach (var component in new[] { "transformer", "text_encoder" })
            File.Copy(Path.Combine(TestPaths.ModelsDir, "test", "lora-merged", "flux-dev", component, "model.onnx"), Path.Combine(merged.Path, component, "model.onnx"), overwrite: true);
        var model = TestModels.PathOf("tiny-flux-dev");
        async Task<byte[]> Pixels(string name, params string[] args)
        {
            var (code, _, error) = await CliRunner.Run(args);
            Assert.True(code == 0, error);
            return LocalDiffusion.Imaging.GeneratedImage.LoadPng(Path.Combine(dir.Path, name + ".png")).Rgb;
        }
        string Out(string name) => Path.Combine(dir.Path, name + ".png");
        var plain = await Pixels("plain", Common(model, "a red circle", Out("plain")));
        var expected = await Pixels("merged", Common(merged.Path, "a red circle", Out("merged")));
        var flag = await Pixels("flag", [.. Common(model, "a red circle", Out("flag")), "--lora", Lora("flux_kohya_fp16.safetensors") + ":1"]);
        var tag = await Pixels("tag", [.. Common(model, "a red circle <lora:flux_peft_fp32:1>", Out("tag")), "--lora-dir", Path.Combine(TestPaths.ModelsDir, "test", "lora")]);
        Assert.True(Largest(plain, expected) > 8, "the LoRA must change the picture");
        Assert.True(Largest(expected, flag) <= 1, $"--lora: largest pixel difference {Largest(expected, flag)}");
        Assert.True(Largest(expected, tag) <= 1, $"<lora:…>: largest pixel difference {Largest(expected, tag)}");
    }

    [Fact]
    public async Task AnSd15LoraOnFluxIsTheRequestsMistakeNamingTheFile()
    {
        // A readable LoRA for another model: exit 1 (model incompatible), not 2 (a model file the engine cannot read).
        using var dir = new TempDirectory();
        var (code, _, error) = await CliRunner.Run([.. Common(TestModels.PathOf("tiny-flux-dev"), "a red circle", Path.Combine(dir.Path, "x.png")), "--lora", Lora("kohya_fp16.safetensors")]);
        Assert.Equal(1, code);
        Assert.Contains("kohya_fp16.safetensors", error);
        Assert.Contains("SD 1.x/2.x/XL UNet", error);
    }
}
