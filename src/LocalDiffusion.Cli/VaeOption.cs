using System.CommandLine;

namespace LocalDiffusion.Cli;

/// <summary>The <c>--vae</c> option of the commands that load a model for generating: another VAE decoder.</summary>
internal static class VaeOption
{
    public static Option<string?> Create() => new("--vae")
    {
        Description = "Decode with this VAE decoder instead of the model's: an .onnx file, a vae_decoder folder (model.onnx, config.json) or a model folder. " +
            "E.g. an fp32 SDXL VAE for an fp16 export that overflows.",
    };
}
