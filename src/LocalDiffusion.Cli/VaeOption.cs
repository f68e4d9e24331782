using System.CommandLine;

namespace LocalDiffusion.Cli;

/// <summary>The <c>--vae</c> option of the commands that load a model for generating: another VAE decoder.</summary>
internal static class VaeOption
{
    public static Option<string?> Create() => new("--vae")
    {
        Description = "Decode with this VAE decoder instead of the model's: an .onnx file, a vae_decoder folder (model.onnx, config.json) or a model folder. " +
            "E.g. an fp32 SDXL VAE for an fp16 export that overflows, or a TAESD (the tiny autoencoder: milliseconds instead of seconds, a softer picture).",
    };

    /// <summary>The <c>--preview-vae</c> option: the decoder of live previews, or <c>full</c> for the full VAE.</summary>
    public static Option<string?> CreatePreview() => new("--preview-vae")
    {
        Description = "Decode live previews with this TAESD decoder (an .onnx file or folder, as --vae takes), or 'full' for the full VAE. " +
            "Default: the TAESD the model folder ships (taesd/, or taesd_decoder.onnx …), else the full VAE.",
    };

    /// <summary>The options <c>--preview-vae</c> sets: a decoder's path, or full-VAE previews.</summary>
    public static (string? Path, bool FullVae) ReadPreview(string? value) =>
        string.Equals(value, "full", StringComparison.OrdinalIgnoreCase) ? (null, true) : (value, false);
}
