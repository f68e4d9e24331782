using LocalDiffusion.Pipeline;
using System.Reflection;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Tests.Errors;

/// <summary>
/// Errors carry their culprit as data (issue 20): the field, its value and what was expected; the file; the stage and
/// step. Each front-end names the field its own way from one table (<see cref="RequestFields"/>), and no message is
/// parsed on the way. Requests here are real ones refused by the real pipeline on the tiny test models.
/// </summary>
public sealed class TypedErrorTests
{
    private static StableDiffusionPipeline Tiny => TestModels.Pipeline("tiny");

    [Fact]
    public async Task A_step_count_out_of_range_carries_field_value_and_range_and_each_front_end_names_it()
    {
        var e = await Assert.ThrowsAsync<InvalidRequestException>(() => Tiny.GenerateAsync(TestModels.Request() with { Steps = 0 }));
        Assert.Equal(ErrorKind.InvalidRequest, ErrorContract.KindOf(e));
        Assert.Equal("Steps", e.Culprit.Field);
        Assert.Equal(0, e.Culprit.Value);
        Assert.Equal("between 1 and 1000", e.Culprit.Expected);
        Assert.Equal("Steps is 0; it must be between 1 and 1000.", e.Message); // no " (Parameter 'Steps')"
        Assert.Equal("--steps is 0; it must be between 1 and 1000.", RequestFields.MessageFor(e, FrontEnd.Cli));
        Assert.Equal("steps is 0; it must be between 1 and 1000.", RequestFields.MessageFor(e, FrontEnd.OpenAi));
    }

    [Fact]
    public async Task A_width_is_size_on_openai_and_width_on_a1111()
    {
        var e = await Assert.ThrowsAsync<InvalidRequestException>(() => Tiny.GenerateAsync(TestModels.Request() with { Width = 100 }));
        Assert.Equal("Width", e.Culprit.Field);
        Assert.Equal(100, e.Culprit.Value);
        Assert.StartsWith("--width is 100;", RequestFields.MessageFor(e, FrontEnd.Cli));
        Assert.StartsWith("size is 100;", RequestFields.MessageFor(e, FrontEnd.OpenAi));
        Assert.StartsWith("width is 100;", RequestFields.MessageFor(e, FrontEnd.Automatic1111));
        Assert.Equal("size", RequestFields.NameIn("Width", FrontEnd.OpenAi));
        Assert.Equal("cfg_scale", RequestFields.NameIn("GuidanceScale", FrontEnd.Automatic1111));
    }

    [Fact]
    public async Task Text_to_image_on_a_refiner_is_the_model_not_the_request_and_names_the_folder()
    {
        using var refiner = StableDiffusionPipeline.Load(TestModels.PathOf("tiny-sdxl-refiner"), new PipelineOptions { Device = "cpu" });
        var e = await Assert.ThrowsAsync<ModelIncompatibleException>(() => refiner.GenerateAsync(TestModels.Request()));
        Assert.Equal(ErrorKind.ModelIncompatible, ErrorContract.KindOf(e));
        Assert.Equal("InitImage", e.Culprit.Field);
        Assert.Equal(refiner.Info.Root, e.Culprit.File);
        var row = ErrorContract.For(ErrorKind.ModelIncompatible);
        Assert.Equal((1, 400, "model_incompatible"), (row.ExitCode, row.HttpStatus, row.Code));
        Assert.StartsWith("--init-image is required", RequestFields.MessageFor(e, FrontEnd.Cli));
    }

    [Fact]
    public void The_engines_own_errors_state_their_kind_and_culprit()
    {
        var numerics = new GenerationNumericsException(NumericsStage.Unet, 3, "the UNet returned NaN");
        Assert.Equal((ErrorKind.Numerics, "Unet", 3), (numerics.Kind, numerics.Culprit.Stage, numerics.Culprit.Step));
        var model = new LocalDiffusion.Onnx.ModelLoadException("models/x/unet/model.onnx", "truncated");
        Assert.Equal((ErrorKind.ModelFormat, "models/x/unet/model.onnx"), (model.Kind, model.Culprit.File));
        var lora = new LocalDiffusion.Adapters.LoraException("a.safetensors", "lora_unet_x.alpha", "shape");
        Assert.Equal(("a.safetensors", "lora_unet_x.alpha"), (lora.Culprit.File, lora.Culprit.Key));
        // Every kind has one row; the server's statuses for refusals are 4xx and for failures 5xx.
        foreach (var kind in Enum.GetValues<ErrorKind>())
        {
            var row = Assert.Single(ErrorContract.Table, r => r.Kind == kind);
            Assert.Equal(kind is ErrorKind.InvalidRequest or ErrorKind.ModelIncompatible or ErrorKind.Cancelled, row.HttpStatus < 500);
        }
    }

    [Fact]
    public void Every_field_in_the_table_is_a_property_or_parameter_that_exists()
    {
        // The table's library names are what errors carry: a renamed property would silently lose its flag otherwise.
        var server = Assembly.Load("LocalDiffusion.Server").GetType("LocalDiffusion.Server.ServerOptions", throwOnError: true)!;
        var properties = new[] { typeof(GenerationRequest), typeof(PipelineOptions), server }
            .SelectMany(t => t.GetProperties()).Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        var parameters = typeof(StableDiffusionPipeline).GetMethod(nameof(StableDiffusionPipeline.GenerateWithRefinerAsync))!
            .GetParameters().Select(p => p.Name!).ToHashSet(StringComparer.Ordinal);
        string[] cliOnly = ["Outpaint", "Hires"]; // --outpaint's margins (Outpainting.ParseMargins) and the hires fix as a whole
        // The hires fix's options are named Hires.<HiresOptions property>.
        var hires = typeof(LocalDiffusion.Upscaling.HiresOptions).GetProperties().Select(p => "Hires." + p.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var row in RequestFields.Table)
            Assert.True(properties.Contains(row.Library) || parameters.Contains(row.Library) || cliOnly.Contains(row.Library) || hires.Contains(row.Library),
                $"{row.Library} is neither a request/option property nor a refiner parameter");
        Assert.Equal(RequestFields.Table.Count, RequestFields.Table.Select(r => r.Library).Distinct().Count());
    }
}
