using LocalDiffusion.Pipeline;
using System.Text.Json.Nodes;
using LocalDiffusion.Cli;
using LocalDiffusion.Onnx;
using LocalDiffusion.Tests.Cli;

namespace LocalDiffusion.Tests.Errors;

/// <summary>
/// Issue 20, case 4: a scheduler_config.json whose training schedule is unusable is a model error at load, naming the
/// file, the key and the allowed range, not a step-count limit blamed on --steps or NaN blamed on the UNet.
/// </summary>
public class ScheduleConfigErrorTests
{
    private static string ConfigOf(string model) => Path.Combine(model, "scheduler", "scheduler_config.json");

    // A copy of models/test/tiny with the given keys of its scheduler config replaced (raw JSON values).
    private static TempDirectory TinyWith(params (string Key, string Raw)[] keys)
    {
        var model = TestModels.CopyOf("tiny");
        var node = JsonNode.Parse(File.ReadAllText(ConfigOf(model.Path)))!.AsObject();
        foreach (var (key, raw) in keys) node[key] = JsonNode.Parse(raw);
        File.WriteAllText(ConfigOf(model.Path), node.ToJsonString());
        return model;
    }

    public static TheoryData<string, string, string, string, string> Cases => new()
    {
        // key, raw value, a second key and value ("" for none), the key the message names, what it says is allowed
        { "beta_start", "0.5", "", "", "beta_start < beta_end" },
        { "beta_end", "0.0001", "", "", "beta_start < beta_end" },
        { "beta_start", "0", "", "", "between 0 and 1" },
        { "beta_end", "1.5", "", "", "between 0 and 1" },
        { "beta_end", "0.9", "beta_schedule", "\"linear\"", "alphas_cumprod" },
        { "trained_betas", "[" + string.Join(",", Enumerable.Repeat("0.9", 1000)) + "]", "", "", "alphas_cumprod" },
        { "num_train_timesteps", "0", "", "", "an integer ≥ 1" },
        { "beta_schedule", "\"cosine\"", "", "", "\"squaredcos_cap_v2\"" },
        { "prediction_type", "\"noise\"", "", "", "\"v_prediction\"" },
        { "timestep_spacing", "\"even\"", "", "", "\"trailing\"" },
        { "algorithm_type", "\"dpmsolver3\"", "", "", "\"sde-dpmsolver++\"" },
        { "solver_type", "\"rk4\"", "", "", "\"midpoint\"" },
        { "variance_type", "\"wobbly\"", "", "", "\"fixed_small\"" },
        { "final_sigmas_type", "\"one\"", "", "", "\"sigma_min\"" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void AnUnusableScheduleIsAModelErrorNamingFileKeyAndRange(string key, string raw, string otherKey, string otherRaw, string expected)
    {
        using var model = otherKey.Length > 0 ? TinyWith((key, raw), (otherKey, otherRaw)) : TinyWith((key, raw));

        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(model.Path, new PipelineOptions { Device = "cpu" }));
        Assert.Equal(ConfigOf(model.Path), e.FilePath);
        Assert.Contains($"\"{key}\"", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("tiny")]
    [InlineData("tiny-sd3")]
    public void The_message_names_the_file_once_then_the_key(string variant)
    {
        // SD's and the flow families' loaders both take the reader's problem, not its message, after their own path.
        using var model = TestModels.CopyOf(variant);
        var node = JsonNode.Parse(File.ReadAllText(ConfigOf(model.Path)))!.AsObject();
        node["num_train_timesteps"] = JsonNode.Parse("\"many\"");
        File.WriteAllText(ConfigOf(model.Path), node.ToJsonString());

        var e = Assert.Throws<ModelLoadException>(() => StableDiffusionPipeline.Load(model.Path, new PipelineOptions { Device = "cpu" }));
        Assert.Equal(ConfigOf(model.Path), e.FilePath);
        Assert.Equal($"{ConfigOf(model.Path)}: key \"num_train_timesteps\" is \"many\"; expected an integer.", e.Message);
    }

    [Fact]
    public void AUsableButUnusualScheduleStillLoads()
    {
        // Linear 0.0001 → 0.02 is diffusers' class default: ᾱ stays positive, nothing to refuse.
        using var model = TinyWith(("beta_schedule", "\"linear\""), ("beta_start", "0.0001"), ("beta_end", "0.02"));
        using var pipeline = StableDiffusionPipeline.Load(model.Path, new PipelineOptions { Device = "cpu" });
        Assert.NotNull(pipeline);
    }

    [Fact]
    public async Task TheCliReportsItAsAModelErrorNotAsTheStepsFlag()
    {
        using var model = TinyWith(("beta_start", "0.5"));
        using var dir = new TempDirectory();
        var (code, _, error) = await CliRunner.Run("generate", "--model", model.Path, "--device", "cpu", "--prompt", "x", "--steps", "4",
            "--out", Path.Combine(dir.Path, "o.png"));
        Assert.Equal(ExitCodes.ModelError, code);
        Assert.Contains("scheduler_config.json", error);
        Assert.Contains("beta_start", error);
        Assert.Contains("beta_start < beta_end", error);
        Assert.DoesNotContain("--steps", error);
    }
}
