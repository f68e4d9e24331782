using LocalDiffusion.Errors;
using LocalDiffusion.Pipeline;
using System.Text.Json.Nodes;
using LocalDiffusion.Onnx;
using LocalDiffusion.Schedulers;
using LocalDiffusion.Tests.Cli;

namespace LocalDiffusion.Tests.Errors;

/// <summary>
/// Seeded fuzzing of the error contract: random requests, corrupted model folders and CLI argument lists. Every case
/// must either work or fail with one of the contract's exceptions (<see cref="ArgumentException"/> naming a request
/// field, <see cref="ModelLoadException"/> naming a file inside the model folder, <see cref="GenerationNumericsException"/>),
/// within a time bound, and a failed CLI run must leave no file behind. The normal suite runs a few hundred cases;
/// set LOCALDIFFUSION_FUZZ_SCALE (e.g. 20) for a longer run, and LOCALDIFFUSION_FUZZ_SEED to explore other cases.
/// </summary>
public class ContractFuzzTests
{
    private static readonly int Scale = int.TryParse(Environment.GetEnvironmentVariable("LOCALDIFFUSION_FUZZ_SCALE"), out var s) && s > 0 ? s : 1;

    private static readonly int Seed = int.TryParse(Environment.GetEnvironmentVariable("LOCALDIFFUSION_FUZZ_SEED"), out var seed) ? seed : 20261202;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    private static readonly HashSet<string> RequestFields = typeof(GenerationRequest).GetProperties().Select(p => p.Name).ToHashSet();

    private static T Pick<T>(Random random, params T[] items) => items[random.Next(items.Length)];

    [Fact]
    public async Task RandomRequestsWorkOrFailByTheContract()
    {
        var random = new Random(Seed);
        var schedulers = SchedulerRegistry.Default.All.Select(i => i.Id).ToArray();
        var outcomes = new Dictionary<string, int>();
        for (var i = 0; i < 200 * Scale; i++)
        {
            var variant = Pick(random, "tiny", "tiny-static", "tiny-fp16", "tiny-optimum");
            // A good request, then none, one or two fields replaced by edge or bad values.
            var request = new GenerationRequest
            {
                Prompt = Pick(random, "a red circle", "", "日本語 🎨", string.Concat(Enumerable.Repeat("long prompt ", 50))),
                Steps = Pick(random, 1, 2, 3, 4),
                GuidanceScale = Pick(random, 7.5f, 1f, 0f, 3f),
                Width = 64,
                Height = 64,
                ImageCount = Pick(random, 1, 2),
                Seed = Pick<long?>(random, null, 0, 1, long.MaxValue),
                Scheduler = Pick(random, schedulers),
            };
            for (var m = random.Next(3); m > 0; m--)
            {
                request = random.Next(13) switch
                {
                    9 => request with { InitImage = Picture(random), Strength = Pick<float?>(random, null, 0.5f, 1f) },
                    10 => request with { Strength = Pick<float?>(random, 0.3f, 0f, -1f, 1.5f, float.NaN) },
                    11 => request with { MaskImage = Picture(random), InitImage = random.Next(2) == 0 ? Picture(random) : request.InitImage },
                    12 => request with { MaskBlur = Pick(random, 0f, 4f, -1f, 1e9f, float.NaN), Eta = Pick<float?>(random, null, 0.5f, -1f, float.NaN, 2f) },
                    0 => request with { Prompt = null! },
                    1 => request with { NegativePrompt = Pick(random, "blurry", null!) },
                    2 => request with { Steps = Pick(random, 0, -1, 1001, int.MaxValue) },
                    3 => request with { GuidanceScale = Pick(random, 100f, 101f, -1f, float.NaN, float.PositiveInfinity, 3.4e38f) },
                    4 => request with { Width = Pick<int?>(random, null, 16, 32, 0, -8, 8, 24, 72, 4104) },
                    5 => request with { Height = Pick<int?>(random, null, 16, 48, 7, 4097) },
                    6 => request with { ImageCount = Pick(random, 0, 65, 3) },
                    7 => request with { Scheduler = Pick<string?>(random, null, "nope", "", "DPM++ 2M Karras") },
                    _ => request with { InitialLatents = Latents(random, request.ImageCount) },
                };
            }
            var outcome = await Classify(() => TestModels.Pipeline(variant).GenerateAsync(request), request.ToString());
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
        }
        TestContext.Current.TestOutputHelper?.WriteLine(string.Join(", ", outcomes.Select(o => $"{o.Key}: {o.Value}")));
        Assert.True(outcomes.GetValueOrDefault("ok") > 0, "no request succeeded: the generator only makes bad requests");
    }

    private static LocalDiffusion.Imaging.InitImage Picture(Random random)
    {
        var (w, h) = Pick(random, (64, 64), (37, 100), (8, 8), (1, 1), (64, 32));
        var rgb = new byte[w * h * 3];
        random.NextBytes(rgb);
        return new LocalDiffusion.Imaging.InitImage(w, h, rgb);
    }

    private static float[] Latents(Random random, int count)
    {
        var values = new float[Math.Max(1, count) * 4 * 8 * 8 + Pick(random, 0, 0, 1, -1)];
        for (var k = 0; k < values.Length; k++) values[k] = (float)(random.NextDouble() * 2 - 1);
        if (random.Next(3) == 0) values[random.Next(values.Length)] = Pick(random, float.NaN, float.NegativeInfinity);
        return values;
    }

    [Fact]
    public async Task CorruptedModelFoldersFailByTheContract()
    {
        var random = new Random(Seed + 1);
        var outcomes = new Dictionary<string, int>();
        for (var i = 0; i < 60 * Scale; i++)
        {
            var variant = Pick(random, "tiny", "tiny-optimum", "tiny-external");
            using var model = TestModels.CopyOf(variant);
            var mutation = Corrupt(model.Path, random);
            var outcome = await Classify(async () =>
            {
                using var pipeline = StableDiffusionPipeline.Load(model.Path, new PipelineOptions { Device = "cpu" });
                return await pipeline.GenerateAsync(new GenerationRequest { Prompt = "a cat", Steps = 2, Seed = 1 });
            }, $"{variant}: {mutation}", model.Path);
            outcomes[outcome] = outcomes.GetValueOrDefault(outcome) + 1;
        }
        TestContext.Current.TestOutputHelper?.WriteLine(string.Join(", ", outcomes.Select(o => $"{o.Key}: {o.Value}")));
        Assert.True(outcomes.GetValueOrDefault(nameof(ModelLoadException)) > 10, "the corruptions rarely broke anything");
    }

    private static readonly string[] ConfigKeys =
    [
        "beta_start", "beta_end", "beta_schedule", "num_train_timesteps", "steps_offset", "prediction_type", "timestep_spacing",
        "trained_betas", "clip_sample", "thresholding", "solver_order", "sigma_min", "_class_name", "model_max_length",
        "pad_token", "bos_token", "eos_token", "scaling_factor", "sample_size",
    ];

    private static readonly string[] ConfigValues =
        ["0", "-1", "1e12", "1e400", "2.0", "0.5", "\"x\"", "\"\"", "null", "true", "[]", "{}", "[1,2]", "1000000", "\"linspace\"", "\"DDIMScheduler\""];

    private static string Corrupt(string root, Random random)
    {
        var files = Directory.GetFiles(root, "*", SearchOption.AllDirectories).Order().ToArray();
        var file = Pick(random, files);
        var relative = Path.GetRelativePath(root, file);
        switch (random.Next(7))
        {
            case 0:
                var bytes = File.ReadAllBytes(file);
                var keep = random.Next(bytes.Length);
                File.WriteAllBytes(file, bytes[..keep]);
                return $"{relative} truncated to {keep} bytes";
            case 1:
                File.WriteAllText(file, "version https://git-lfs.github.com/spec/v1\noid sha256:00\nsize 12345\n");
                return $"{relative} is an LFS pointer";
            case 2:
                File.Delete(file);
                return $"{relative} deleted";
            case 3:
                var junk = new byte[random.Next(1, 4096)];
                random.NextBytes(junk);
                File.WriteAllBytes(file, junk);
                return $"{relative} is random bytes";
            case 4:
                string a = Pick(random, "unet", "vae_decoder", "text_encoder", "vae_encoder"), b = Pick(random, "unet", "vae_decoder", "text_encoder");
                string pa = Path.Combine(root, a, "model.onnx"), pb = Path.Combine(root, b, "model.onnx"), tmp = pa + ".swap";
                if (a == b || !File.Exists(pa) || !File.Exists(pb)) return "nothing";
                File.Move(pa, tmp);
                File.Move(pb, pa);
                File.Move(tmp, pb);
                return $"{a} and {b} swapped";
            default:
                var json = Pick(random, files.Where(f => f.EndsWith(".json", StringComparison.Ordinal) && !f.EndsWith("vocab.json", StringComparison.Ordinal)).ToArray());
                var (key, value) = (Pick(random, ConfigKeys), Pick(random, ConfigValues));
                var node = JsonNode.Parse(File.ReadAllText(json)) as JsonObject ?? [];
                node[key] = JsonNode.Parse(value == "1e400" ? "1e300" : value);
                File.WriteAllText(json, value == "1e400" ? node.ToJsonString().Replace("1E+300", "1e400", StringComparison.Ordinal) : node.ToJsonString());
                return $"{Path.GetRelativePath(root, json)}: {key} = {value}";
        }
    }

    [Fact]
    public async Task RandomCommandLinesExitCleanlyAndWriteNothingWhenTheyFail()
    {
        var random = new Random(Seed + 2);
        using var dir = new TempDirectory();
        string[][] pool =
        [
            ["--steps", "2"], ["--steps", "0"], ["--steps", "x"], ["--guidance", "nan"], ["--guidance", "7"], ["--width", "72"], ["--width", "64"],
            ["--height", "-8"], ["--n", "2"], ["--n", "0"], ["--seed", "-5"], ["--scheduler", "euler_a"], ["--scheduler", "bogus"],
            ["--threads", "-5"], ["--threads", "1"], ["--device", "cuda"], ["--device", "nope"], ["--latents", "/no/such.npy"],
            ["--out", ""], ["--out", "DIR"], ["--save-latents", "OUT"], ["--overwrite"], ["--negative-prompt", "blurry"], ["--unknown-flag"],
        ];
        for (var i = 0; i < 30 * Scale; i++)
        {
            var args = new List<string> { "generate", "--model", TestModels.PathOf("tiny"), "--prompt", "a cat", "--steps", "1" };
            foreach (var _ in Enumerable.Range(0, random.Next(1, 4)))
                args.AddRange(Pick(random, pool).Select(a => a.Replace("DIR", dir.Path, StringComparison.Ordinal)));
            var output = Path.Combine(dir.Path, $"case{i}.png");
            if (!args.Contains("--out")) args.AddRange(["--out", output]);
            args = args.Select(a => a == "OUT" ? args[args.IndexOf("--out") + 1] : a).ToList();
            var before = Directory.GetFiles(dir.Path).Order().ToArray();

            var run = CliRunner.Run([.. args]);
            var (code, _, error) = await run.WaitAsync(Bound);

            var line = string.Join(" ", args);
            Assert.True(code is 0 or LocalDiffusion.Cli.ExitCodes.InvalidInput or LocalDiffusion.Cli.ExitCodes.ModelError, $"exit {code} for: {line}\n{error}");
            if (code != 0)
            {
                Assert.DoesNotContain("   at ", error);
                Assert.Equal(before, Directory.GetFiles(dir.Path).Order().ToArray());
            }
        }
    }

    // One outcome: "ok", or the contract exception's type name. Anything else fails the test with the case that caused it.
    private static async Task<string> Classify(Func<Task<GenerationResult>> run, string description, string? modelRoot = null)
    {
        try
        {
            var result = await run().WaitAsync(Bound);
            Assert.NotEmpty(result.Images);
            return "ok";
        }
        catch (TimeoutException)
        {
            Assert.Fail($"no answer within {Bound.TotalSeconds} s: {description}");
            throw;
        }
        catch (ModelLoadException e)
        {
            Assert.True(modelRoot is not null && Path.GetFullPath(e.FilePath).StartsWith(Path.GetFullPath(modelRoot), StringComparison.Ordinal),
                $"ModelLoadException names {e.FilePath}, outside the model folder: {description}\n{e.Message}");
            return nameof(ModelLoadException);
        }
        catch (GenerationNumericsException e)
        {
            Assert.Contains("NaN/infinity", e.Message);
            return nameof(GenerationNumericsException);
        }
        catch (ArgumentException e)
        {
            Assert.True(e.ParamName is not null && RequestFields.Contains(e.ParamName),
                $"ArgumentException names '{e.ParamName}', not a request field: {description}\n{e.Message}");
            return nameof(ArgumentException);
        }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException)
        {
            Assert.Fail($"{e.GetType().Name} breaks the error contract: {description}\n{e}");
            throw;
        }
    }
}
