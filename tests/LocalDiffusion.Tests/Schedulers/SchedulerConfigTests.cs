using LocalDiffusion.Schedulers;

namespace LocalDiffusion.Tests.Schedulers;

public class SchedulerConfigTests
{
    // runwayml/stable-diffusion-v1-5 scheduler/scheduler_config.json, plus an unknown key.
    private const string Sd15Json = """
        {
          "_class_name": "PNDMScheduler",
          "_diffusers_version": "0.6.0",
          "beta_end": 0.012,
          "beta_schedule": "scaled_linear",
          "beta_start": 0.00085,
          "num_train_timesteps": 1000,
          "set_alpha_to_one": false,
          "skip_prk_steps": true,
          "steps_offset": 1,
          "trained_betas": null,
          "clip_sample": false,
          "some_future_key": [1, 2, 3]
        }
        """;

    [Fact]
    public void LoadReadsPresentKeysAndLeavesOthersAbsent()
    {
        var path = Path.Combine(Path.GetTempPath(), $"scheduler_config_{Guid.NewGuid():N}.json");
        File.WriteAllText(path, Sd15Json);
        try
        {
            var config = SchedulerConfig.Load(path);
            Assert.Equal("PNDMScheduler", config.ClassName);
            Assert.Equal(1000, config.NumTrainTimesteps);
            Assert.Equal(0.00085, config.BetaStart);
            Assert.Equal(0.012, config.BetaEnd);
            Assert.Equal(BetaSchedule.ScaledLinear, config.BetaSchedule);
            Assert.Equal(false, config.SetAlphaToOne);
            Assert.Equal(true, config.SkipPrkSteps);
            Assert.Equal(1, config.StepsOffset);
            Assert.Equal(false, config.ClipSample);
            // Absent (or null) keys stay null so each class applies its own default.
            Assert.Null(config.TrainedBetas);
            Assert.Null(config.PredictionType);
            Assert.Null(config.TimestepSpacing);
            Assert.Null(config.UseKarrasSigmas);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void OverridesInCodeUseWith()
    {
        var config = SchedulerConfig.Parse(Sd15Json) with { PredictionType = PredictionType.VPrediction, TimestepSpacing = TimestepSpacing.Trailing };
        Assert.Equal(PredictionType.VPrediction, config.PredictionType);
        Assert.Equal(TimestepSpacing.Trailing, config.TimestepSpacing);
        Assert.Equal(BetaSchedule.ScaledLinear, config.BetaSchedule);
        Assert.Equal(new SchedulerConfig(), SchedulerConfig.Default);
    }

    [Fact]
    public void ReadsEveryEnumSpellingAndPythonInfinity()
    {
        var config = SchedulerConfig.Parse("""
            {"prediction_type": "v_prediction", "timestep_spacing": "linspace", "algorithm_type": "sde-dpmsolver++",
             "solver_type": "heun", "final_sigmas_type": "sigma_min", "beta_schedule": "squaredcos_cap_v2",
             "interpolation_type": "linear", "timestep_type": "discrete", "lambda_min_clipped": -Infinity,
             "trained_betas": [0.1, 0.2], "num_train_timesteps": 2, "use_karras_sigmas": true, "solver_order": 3}
            """);
        Assert.Equal(PredictionType.VPrediction, config.PredictionType);
        Assert.Equal(TimestepSpacing.Linspace, config.TimestepSpacing);
        Assert.Equal(DpmSolverAlgorithmType.SdeDpmSolverPlusPlus, config.AlgorithmType);
        Assert.Equal(DpmSolverType.Heun, config.SolverType);
        Assert.Equal(FinalSigmasType.SigmaMin, config.FinalSigmasType);
        Assert.Equal(BetaSchedule.SquaredCosCapV2, config.BetaSchedule);
        Assert.Equal(double.NegativeInfinity, config.LambdaMinClipped);
        Assert.Equal([0.1f, 0.2f], config.TrainedBetas!);
        Assert.Equal(true, config.UseKarrasSigmas);
        Assert.Equal(3, config.SolverOrder);
    }

    [Theory]
    [InlineData("""{"num_train_timesteps": "1000"}""", "num_train_timesteps", "an integer")]
    [InlineData("""{"num_train_timesteps": 1000.5}""", "num_train_timesteps", "an integer")]
    [InlineData("""{"steps_offset": -1}""", "steps_offset", "an integer ≥ 0")]
    [InlineData("""{"beta_start": true}""", "beta_start", "a number")]
    [InlineData("""{"skip_prk_steps": "yes"}""", "skip_prk_steps", "true or false")]
    [InlineData("""{"beta_schedule": "cosine"}""", "beta_schedule", "\"scaled_linear\"")]
    [InlineData("""{"prediction_type": "noise"}""", "prediction_type", "\"v_prediction\"")]
    [InlineData("""{"trained_betas": [0.1, "x"]}""", "trained_betas", "an array of numbers")]
    public void WrongTypeOrValueNamesSourceAndKey(string json, string key, string expected)
    {
        var error = Assert.Throws<InvalidDataException>(() => SchedulerConfig.Parse(json, "model/scheduler/scheduler_config.json"));
        Assert.Contains("model/scheduler/scheduler_config.json", error.Message);
        Assert.Contains($"\"{key}\"", error.Message);
        Assert.Contains(expected, error.Message);
    }

    [Fact]
    public void NotJsonNamesTheFile()
    {
        var path = Path.Combine(Path.GetTempPath(), $"scheduler_config_{Guid.NewGuid():N}.json");
        File.WriteAllText(path, "{ \"beta_start\": ");
        try
        {
            var error = Assert.Throws<InvalidDataException>(() => SchedulerConfig.Load(path));
            Assert.Contains(path, error.Message);
        }
        finally
        {
            File.Delete(path);
        }
        Assert.Throws<InvalidDataException>(() => SchedulerConfig.Parse("[1, 2]"));
    }

    [Fact]
    public void MissingFileIsFileNotFound() =>
        Assert.Throws<FileNotFoundException>(() => SchedulerConfig.Load(Path.Combine(Path.GetTempPath(), $"absent_{Guid.NewGuid():N}.json")));
}
