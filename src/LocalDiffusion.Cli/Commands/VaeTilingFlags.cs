using System.CommandLine;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Cli.Commands;

/// <summary><c>--vae-tiling auto|on|off</c> and <c>--vae-tile PX</c>, shared by <c>generate</c>, <c>serve</c> and <c>bench pipeline</c>.</summary>
internal sealed class VaeTilingFlags
{
    private readonly Option<string> _mode = new Option<string>("--vae-tiling")
    {
        Description = "Decode in overlapping tiles: auto (above 1024x1024), on, off.", DefaultValueFactory = _ => "auto",
    }.AcceptOnlyFromAmong("auto", "on", "off");

    private readonly Option<int> _tile = new("--vae-tile")
    {
        Description = "Tile side in pixels, a multiple of 8 (default 512, diffusers' for SD); smaller tiles use less memory, with more seams to blend.",
        DefaultValueFactory = _ => 512,
    };

    /// <summary>Adds the options to <paramref name="command"/>.</summary>
    public void AddTo(Command command)
    {
        command.Options.Add(_mode);
        command.Options.Add(_tile);
    }

    /// <summary>The tiling the flags ask for, checked.</summary>
    public VaeTilingOptions Read(ParseResult parse)
    {
        var tile = parse.GetValue(_tile);
        if (tile < 64 || tile > 4096 || tile % 8 != 0)
            throw new InvalidRequestException("--vae-tile", null, null, called => $"{called} is {tile}; it must be a multiple of 8 from 64 to 4096 pixels.");
        return new VaeTilingOptions { Mode = Enum.Parse<VaeTiling>(parse.GetValue(_mode)!, ignoreCase: true), TileLatentSize = tile / 8 };
    }
}
