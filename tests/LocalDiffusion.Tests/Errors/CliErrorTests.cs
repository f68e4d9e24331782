using LocalDiffusion.Cli;
using LocalDiffusion.Latents;
using LocalDiffusion.Tests.Cli;

namespace LocalDiffusion.Tests.Errors;

/// <summary>
/// The CLI's side of the error contract: one line naming the flag, an exit code that says whose fault it is, every
/// output path checked before any work, and nothing the user had changed.
/// </summary>
public class CliErrorTests
{
    private static readonly string[] Generate = ["generate", "--model", TestModels.PathOf("tiny"), "--prompt", "a cat", "--steps", "2", "--device", "cpu"];

    private static Task<(int Code, string Out, string Err)> Run(params string[] args) => CliRunner.Run(args);

    private static Dictionary<string, byte[]> Snapshot(string dir) =>
        Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories)
            .ToDictionary(p => p, p => File.Exists(p) ? File.ReadAllBytes(p) : []);

    private static async Task<string> RefusedBeforeWork(string dir, params string[] args)
    {
        var before = Snapshot(dir);
        var (code, output, error) = await Run([.. Generate, .. args]);
        Assert.Equal(ExitCodes.InvalidInput, code);
        Assert.DoesNotContain("encoding", output); // no progress: refused before the model ran
        Assert.DoesNotContain("   at ", error);
        var after = Snapshot(dir);
        Assert.Equal(before.Keys.Order(), after.Keys.Order());
        foreach (var (path, bytes) in before) Assert.Equal(bytes, after[path]);
        return error;
    }

    [Fact]
    public async Task OutputThatIsAFolderIsRefusedBeforeWorkWithAndWithoutOverwrite()
    {
        using var dir = new TempDirectory();
        Assert.Contains("--out", await RefusedBeforeWork(dir.Path, "--out", dir.Path));
        Assert.Contains("is a folder", await RefusedBeforeWork(dir.Path, "--out", dir.Path, "--overwrite"));
        Assert.Contains("--save-latents", await RefusedBeforeWork(dir.Path, "--out", Path.Combine(dir.Path, "a.png"), "--save-latents", dir.Path));
    }

    [Fact]
    public async Task EmptyOutputIsRefused()
    {
        using var dir = new TempDirectory();
        Assert.Contains("--out is empty", await RefusedBeforeWork(dir.Path, "--out", ""));
    }

    [Fact]
    public async Task SavingLatentsOverTheImageIsRefused()
    {
        using var dir = new TempDirectory();
        var png = Path.Combine(dir.Path, "same.png");
        var error = await RefusedBeforeWork(dir.Path, "--out", png, "--save-latents", png, "--overwrite");
        Assert.Contains("same file", error);
    }

    [Fact]
    public async Task ExistingFilesAreKeptByteForByte()
    {
        using var dir = new TempDirectory();
        var png = Path.Combine(dir.Path, "mine.png");
        var npy = Path.Combine(dir.Path, "mine.npy");
        File.WriteAllText(png, "precious picture");
        File.WriteAllText(npy, "precious latents");
        Assert.Contains("already exists", await RefusedBeforeWork(dir.Path, "--out", png));
        Assert.Contains("--save-latents", await RefusedBeforeWork(dir.Path, "--out", Path.Combine(dir.Path, "new.png"), "--save-latents", npy));
    }

    [Fact]
    public async Task OutputUnderAFileIsRefused()
    {
        using var dir = new TempDirectory();
        var file = Path.Combine(dir.Path, "plain.txt");
        File.WriteAllText(file, "x");
        Assert.Contains("is a file, not a folder", await RefusedBeforeWork(dir.Path, "--out", Path.Combine(file, "out.png")));
    }

    [Theory]
    [InlineData("(1, -4, 8, 8)")]
    [InlineData("(1, 4, 99999999999, 8)")]
    [InlineData("(1, 4, 8, 8x)")]
    public async Task LatentsFileWithABadShapeHeaderIsOneClearLine(string shape)
    {
        using var dir = new TempDirectory();
        var npy = Path.Combine(dir.Path, "bad.npy");
        WriteNpyHeader(npy, shape, 4 * 8 * 8);
        var error = await RefusedBeforeWork(dir.Path, "--out", Path.Combine(dir.Path, "o.png"), "--latents", npy);
        Assert.Contains("--latents", error);
        Assert.Contains(npy, error);
        Assert.Throws<InvalidDataException>(() => NpyFile.Read(npy));
    }

    [Fact]
    public async Task LatentsWithTheRightCountButTheWrongShapeAreRefused()
    {
        using var dir = new TempDirectory();
        var npy = Path.Combine(dir.Path, "flat.npy");
        NpyFile.Write(npy, new float[4 * 8 * 8], [8, 4, 8]);
        var error = await RefusedBeforeWork(dir.Path, "--out", Path.Combine(dir.Path, "o.png"), "--latents", npy);
        Assert.Contains("shape (8, 4, 8)", error);
    }

    [Fact]
    public async Task LatentsDecideTheSizeWhenNoneIsGiven()
    {
        using var dir = new TempDirectory();
        var npy = Path.Combine(dir.Path, "wide.npy");
        NpyFile.Write(npy, new LocalDiffusion.Randomness.TorchGenerator(3).Normal(4 * 4 * 6), [1, 4, 4, 6]);
        var png = Path.Combine(dir.Path, "wide.png");
        var (code, _, error) = await Run([.. Generate, "--latents", npy, "--out", png]);
        Assert.True(code == 0, error);
        Assert.Equal(48, LocalDiffusion.Imaging.GeneratedImage.LoadPng(png).Width);
    }

    [Theory]
    [InlineData("--threads", "-5", "--threads")]
    [InlineData("--threads", "100000", "--threads")]
    [InlineData("--n", "100", "--n is 100")]
    [InlineData("--height", "20", "--height is 20")]
    [InlineData("--width", "72", "--width is 72")]
    [InlineData("--guidance", "1e39", "--guidance")]
    [InlineData("--scheduler", "nope", "nope")]
    [InlineData("--device", "quantum", "--device")]
    [InlineData("--width", "2147483647", "--width is 2147483647; it must be a multiple of 16 between 16 and 4096 pixels")] // suggested -2147483648 (issue 20)
    public async Task BadValuesNameTheFlagNotTheLibraryProperty(string flag, string value, string expected)
    {
        using var dir = new TempDirectory();
        var error = await RefusedBeforeWork(dir.Path, "--out", Path.Combine(dir.Path, "o.png"), flag, value);
        Assert.Contains(expected, error);
        Assert.DoesNotContain("ImageCount", error);
        Assert.DoesNotContain("IntraOpThreads", error);
        Assert.DoesNotContain("Parameter '", error);
        Assert.DoesNotContain("-2147483648", error);
    }

    [Fact]
    public async Task ExitCodesSayWhoseFaultItIs()
    {
        using var dir = new TempDirectory();
        using var model = TestModels.CopyOf("tiny");
        File.WriteAllText(Path.Combine(model.Path, "scheduler", "scheduler_config.json"), """{"_class_name": "PNDMScheduler", "beta_end": 2.0}""");
        var (code, _, error) = await Run("generate", "--model", model.Path, "--prompt", "x", "--out", Path.Combine(dir.Path, "o.png"));
        Assert.Equal(ExitCodes.ModelError, code);
        Assert.Contains("scheduler_config.json", error);
        Assert.Contains("beta_end", error);
    }

    [Fact]
    public async Task AnUnexpectedExceptionIsReportedAsABugWithALogFile()
    {
        var error = new StringWriter();
        var code = await ErrorReport.WriteAsync(new InvalidOperationException("state got confused"), error, verbose: false);

        Assert.Equal(ExitCodes.InternalError, code);
        var text = error.ToString();
        Assert.StartsWith("internal error: InvalidOperationException: state got confused", text);
        Assert.Contains("This is a bug in LocalDiffusion", text);
        var log = System.Text.RegularExpressions.Regex.Match(text, @"details are in (\S+\.log)").Groups[1].Value;
        Assert.Contains("state got confused", File.ReadAllText(log));
        File.Delete(log);
    }

    [Fact]
    public async Task VerbosePrintsTheStackTrace()
    {
        var (code, _, error) = await Run("generate", "--model", "/no/such/model", "--prompt", "x", "--verbose");
        Assert.Equal(ExitCodes.ModelError, code);
        Assert.Contains("ModelLoadException", error);
    }

    private static void WriteNpyHeader(string path, string shape, int values)
    {
        var header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}";
        header += new string(' ', 64 - (10 + header.Length + 1) % 64) + "\n";
        using var stream = File.Create(path);
        stream.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, (byte)header.Length, 0]);
        stream.Write(System.Text.Encoding.ASCII.GetBytes(header));
        stream.Write(new byte[values * 4]);
    }

    [Theory]
    [InlineData("out.gif")]
    [InlineData("out.bmp")]
    public async Task An_output_extension_LocalDiffusion_cannot_write_is_refused_before_work(string name)
    {
        using var dir = new TempDirectory();
        var error = await RefusedBeforeWork(dir.Path, "--out", Path.Combine(dir.Path, name));
        Assert.Contains("--out", error);
        Assert.Contains(".png, .jpg, .jpeg or .webp", error);
    }

    [Theory]
    [InlineData("out.jpg", new byte[] { 0xFF, 0xD8, 0xFF })]
    [InlineData("out.JPEG", new byte[] { 0xFF, 0xD8, 0xFF })]
    [InlineData("out.webp", new byte[] { (byte)'R', (byte)'I', (byte)'F', (byte)'F' })]
    [InlineData("out.png", new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' })]
    public async Task The_output_extension_picks_the_encoding(string name, byte[] magic)
    {
        using var dir = new TempDirectory();
        var path = Path.Combine(dir.Path, name);
        var (code, _, error) = await Run([.. Generate, "--width", "64", "--height", "64", "--out", path]);
        Assert.True(code == 0, error);
        Assert.Equal(magic, File.ReadAllBytes(path)[..magic.Length]);
    }

    [Fact]
    public async Task Img2img_settings_without_their_picture_are_refused_before_work()
    {
        using var dir = new TempDirectory();
        var init = Path.Combine(dir.Path, "init.png");
        new LocalDiffusion.Imaging.GeneratedImage(64, 64, new byte[64 * 64 * 3]).SavePng(init);
        var output = Path.Combine(dir.Path, "out.png");
        Assert.Contains("--strength needs --init-image", await RefusedBeforeWork(dir.Path, "--out", output, "--strength", "0.5"));
        Assert.Contains("--mask-blur needs --mask", await RefusedBeforeWork(dir.Path, "--out", output, "--mask-blur", "4"));
        Assert.Contains("--mask-blur needs --mask", await RefusedBeforeWork(dir.Path, "--out", output, "--init-image", init, "--mask-blur", "4"));
    }

    [Fact]
    public async Task An_lcm_model_says_the_negative_prompt_is_unused()
    {
        using var dir = new TempDirectory();
        var (code, output, error) = await Run("generate", "--model", TestModels.PathOf("tiny-lcm"), "--prompt", "a cat", "--negative-prompt", "blurry",
            "--steps", "1", "--width", "64", "--height", "64", "--device", "cpu", "--out", Path.Combine(dir.Path, "out.png"));
        Assert.True(code == 0, error);
        Assert.Contains("warning: The negative prompt is not used by LCM models", output);
    }

    [Fact]
    public async Task A_cache_dir_that_is_a_file_is_refused_before_work()
    {
        using var dir = new TempDirectory();
        var file = Path.Combine(dir.Path, "cache.txt");
        File.WriteAllText(file, "not a folder");
        var error = await RefusedBeforeWork(dir.Path, "--out", Path.Combine(dir.Path, "out.png"), "--cache-dir", file);
        Assert.Contains($"--cache-dir {file} is a file, not a folder", error);
    }

    // Issue 20: the word "refiner" inside a path was rewritten to "--refiner" (models/test/tiny-sdxl---refiner).
    [Fact]
    public async Task A_path_with_the_word_refiner_in_it_is_printed_as_it_is()
    {
        using var dir = new TempDirectory();
        var refiner = Path.Combine(dir.Path, "my-refiner");
        Directory.CreateDirectory(refiner);
        var (code, _, error) = await Run([.. Generate, "--out", Path.Combine(dir.Path, "o.png"), "--refiner", refiner]);
        Assert.Equal(ExitCodes.ModelError, code);
        Assert.Contains(Path.Combine(refiner, "model_index.json"), error);
        Assert.DoesNotContain("---refiner", error);
    }

    [Fact]
    public async Task An_init_image_that_is_a_folder_is_called_a_folder()
    {
        using var dir = new TempDirectory();
        var error = await RefusedBeforeWork(dir.Path, "--out", Path.Combine(dir.Path, "out.png"), "--init-image", dir.Path);
        Assert.Contains($"--init-image: {dir.Path} is a folder; a picture file", error);
    }

    [Fact]
    public async Task Outpainting_past_the_largest_size_or_twice_on_a_side_blames_outpaint()
    {
        using var dir = new TempDirectory();
        var init = Path.Combine(dir.Path, "init.png");
        new LocalDiffusion.Imaging.GeneratedImage(64, 64, new byte[64 * 64 * 3]).SavePng(init);
        var output = Path.Combine(dir.Path, "out.png");
        var error = await RefusedBeforeWork(dir.Path, "--out", output, "--init-image", init, "--outpaint", "left=4064");
        Assert.Contains("--outpaint left=4064: The padded picture would be 4128x64; sides may be at most 4096 pixels", error);
        Assert.DoesNotContain("--width", error);
        Assert.Contains("--outpaint: left is given twice", await RefusedBeforeWork(dir.Path, "--out", output, "--init-image", init, "--outpaint", "left=32,left=64"));
    }

    [Theory]
    [InlineData(new[] { "generate", "--seed", "abc", "-p", "x" }, "error: --seed takes a whole number; got 'abc'.")]
    [InlineData(new[] { "generate", "--guidance", "lots", "-p", "x" }, "error: --guidance takes a number; got 'lots'.")]
    [InlineData(new[] { "generate", "-p", "x", "--vae-tiling", "bogus" }, "error: --vae-tiling takes one of auto, on, off; got 'bogus'.")]
    [InlineData(new[] { "generate", "-p", "x", "3" }, "error: unexpected argument '3'; `localdiffusion generate --help` lists what it takes.")]
    [InlineData(new[] { "generate", "-p", "x", "--stpes", "3" }, "error: unknown option '--stpes'; `localdiffusion generate --help` lists the flags.")]
    [InlineData(new[] { "generate" }, "error: --prompt is required; `localdiffusion generate --help` describes it.")]
    [InlineData(new[] { "serve", "--port", "abc" }, "error: --port takes a whole number; got 'abc'.")]
    public async Task A_bad_command_line_is_one_line_per_mistake_in_the_clis_words(string[] args, string firstLine)
    {
        var (code, _, error) = await Run(args);
        Assert.Equal(ExitCodes.InvalidInput, code);
        Assert.Equal(firstLine, error.Split('\n')[0].TrimEnd());
        Assert.DoesNotContain("System.", error);
    }
}
