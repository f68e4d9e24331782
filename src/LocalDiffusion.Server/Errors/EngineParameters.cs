namespace LocalDiffusion.Server.Errors;

/// <summary>Maps the engine's <see cref="GenerationRequest"/> property names (ArgumentException.ParamName) to API field names.</summary>
internal static class EngineParameters
{
    public static string? ToApiName(string? engineName) => engineName switch
    {
        null => null,
        nameof(GenerationRequest.Prompt) => "prompt",
        nameof(GenerationRequest.NegativePrompt) => "negative_prompt",
        nameof(GenerationRequest.Steps) => "steps",
        nameof(GenerationRequest.GuidanceScale) => "guidance_scale",
        nameof(GenerationRequest.Width) or nameof(GenerationRequest.Height) => "size",
        nameof(GenerationRequest.ImageCount) => "n",
        nameof(GenerationRequest.Seed) => "seed",
        nameof(GenerationRequest.Scheduler) or "name" => "scheduler",
        nameof(GenerationRequest.InitImage) => "image",
        nameof(GenerationRequest.MaskImage) => "mask",
        nameof(GenerationRequest.Strength) => "strength",
        nameof(GenerationRequest.MaskBlur) => "mask_blur",
        "refiner" => "refiner_checkpoint", // StableDiffusionPipeline.GenerateWithRefinerAsync's parameters (A1111's fields)
        "switchAt" => "refiner_switch_at",
        _ => engineName,
    };
}
