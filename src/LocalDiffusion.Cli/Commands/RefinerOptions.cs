using System.CommandLine;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Cli.Commands;

/// <summary><c>generate</c>'s base → refiner hand-off: <c>--refiner DIR</c> finishes what <c>--model</c> starts.</summary>
internal sealed class RefinerOptions
{
    private readonly Option<string?> _refiner = new("--refiner") { Description = "SDXL refiner folder: the model finishes the last part of the schedule from the base's latents (diffusers' denoising_end/denoising_start)." };
    private readonly Option<float> _switchAt = new("--refiner-switch") { Description = "With --refiner: the fraction of the schedule the base model runs, in (0, 1) (default 0.8, as diffusers' example and A1111).", DefaultValueFactory = _ => 0.8f };

    /// <summary>Adds the options to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        command.Options.Add(_refiner);
        command.Options.Add(_switchAt);
    }

    /// <summary>The refiner folder given, checked before any model loads, and the switch point.</summary>
    public (string? Directory, float SwitchAt) Read(ParseResult parse)
    {
        var switchAt = parse.GetValue(_switchAt);
        if (!(float.IsFinite(switchAt) && switchAt is > 0 and < 1))
            throw new InvalidRequestException("--refiner-switch", null, null, called => $"{called} is {switchAt}; it must be a fraction strictly between 0 and 1 (e.g. 0.8).");
        var directory = parse.GetValue(_refiner);
        if (directory is not null && !Directory.Exists(directory))
            throw new InvalidRequestException("--refiner", null, null, called => $"{called} {directory}: no such folder (an SDXL refiner export: text_encoder_2, unet, vae_decoder, …).");
        if (directory is null && parse.GetResult(_switchAt) is { Implicit: false })
            throw new InvalidRequestException("--refiner-switch", null, null, called => $"{called} needs --refiner (the model that finishes the schedule).");
        return (directory, switchAt);
    }
}
