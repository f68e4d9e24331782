using System.CommandLine;
using System.Globalization;
using LocalDiffusion.Upscaling;
using Spectre.Console;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Cli.Commands;

/// <summary><c>localdiffusion upscale</c>: a picture through an ESRGAN-family ONNX upscaler, alpha kept.</summary>
internal static class UpscaleCommand
{
    public static Command Create(IAnsiConsole console)
    {
        var model = new Option<string>("--model", "-m") { Description = "The upscaler: an ESRGAN-family .onnx file (Real-ESRGAN, RRDBNet, …), or a folder holding one.", Required = true };
        var input = new Option<string>("--in", "-i") { Description = "The picture to enlarge (PNG, JPEG, WebP; alpha is kept, enlarged by Lanczos).", Required = true };
        var output = new Option<string>("--out", "-o") { Description = "The PNG to write.", DefaultValueFactory = _ => "upscaled.png" };
        var scale = new Option<double?>("--scale") { Description = "How many times larger each side gets (default: the model's own scale); other factors run the model until large enough, then Lanczos to the exact size." };
        var tile = new Option<int>("--tile") { Description = "Tile side in input pixels (0: the whole picture at once); bounds memory on large pictures.", DefaultValueFactory = _ => new UpscalerOptions().TileSize };
        var overlap = new Option<int>("--tile-overlap") { Description = "Input pixels neighbouring tiles share and blend over, so no seam shows.", DefaultValueFactory = _ => new UpscalerOptions().TileOverlap };
        var overwrite = new Option<bool>("--overwrite") { Description = "Replace the output file if it exists." };
        var device = new Option<string>("--device") { Description = "cpu | cuda[:N] | directml[:N] | coreml (default cpu).", DefaultValueFactory = _ => "cpu" };
        var threads = new Option<int?>("--threads") { Description = "CPU threads per operator (default: ONNX Runtime's choice)." };
        var command = new Command("upscale", "Enlarge a picture with an ESRGAN-family ONNX upscaler.") { model, input, output, scale, tile, overlap, overwrite, device, threads };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var inPath = parse.GetValue(input)!;
            var outPath = parse.GetValue(output)!;
            var replace = parse.GetValue(overwrite);
            if (!string.Equals(Path.GetExtension(outPath), ".png", StringComparison.OrdinalIgnoreCase))
                throw new InvalidRequestException("--out", null, null, called => $"{called} {outPath}: upscale writes PNG (it keeps alpha); give a .png name.");
            if (parse.GetValue(scale) is { } s && !(double.IsFinite(s) && s >= 1 && s <= 16))
                throw new InvalidRequestException("--scale", null, null, called => $"{called} is {s.ToString(CultureInfo.InvariantCulture)}; it must be between 1 and 16.");
            OutputFiles.Check([("--out", outPath)], [("--in", inPath)], replace);
            RgbaPicture picture;
            try
            {
                picture = RgbaPicture.Load(inPath);
            }
            catch (Exception e) when (e is FileNotFoundException or InvalidDataException)
            {
                throw new InvalidRequestException("--in", null, null, called => $"{called}: {e.Message}", e);
            }
            var options = new UpscalerOptions { TileSize = parse.GetValue(tile), TileOverlap = parse.GetValue(overlap), Device = parse.GetValue(device)!, IntraOpThreads = parse.GetValue(threads) };
            if (options.TileSize != 0 && options.TileSize < 32)
                throw new InvalidRequestException("--tile", null, null, called => $"{called} is {options.TileSize}; it must be 0 (no tiling) or at least 32 pixels.");
            if (options.TileOverlap < 0 || (options.TileSize != 0 && options.TileOverlap > options.TileSize / 2))
                throw new InvalidRequestException("--tile-overlap", null, null, called => $"{called} is {options.TileOverlap}; it must be between 0 and half of --tile ({options.TileSize / 2}).");
            using var upscaler = ImageUpscaler.Load(parse.GetValue(model)!, options);
            var factor = parse.GetValue(scale) ?? upscaler.Scale;
            var (width, height) = ((int)Math.Round(picture.Width * factor), (int)Math.Round(picture.Height * factor));
            if ((long)width * height > 8192L * 8192)
                throw new InvalidRequestException("--scale", null, null, called => $"{called} {factor.ToString(CultureInfo.InvariantCulture)} would make {width}x{height}, more than the 64 megapixels a picture may have.");
            RgbaPicture? result = null;
            await console.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                .StartAsync(async ctx =>
                {
                    var task = ctx.AddTask("tiles");
                    var progress = new InlineProgress<UpscaleProgress>(p => { task.MaxValue = p.TileCount; task.Value = p.Tile; });
                    result = await upscaler.UpscaleToAsync(picture, width, height, progress, cancellationToken);
                    task.Value = task.MaxValue;
                });
            result!.SavePng(outPath, replace);
            console.MarkupLineInterpolated(
                $"Saved [green]{outPath}[/] ({result.Width}x{result.Height}{(result.Alpha is null ? "" : ", alpha kept")}) with {upscaler.Name} (x{upscaler.Scale}{(upscaler.IsFloat16 ? ", float16" : "")})");
            return 0;
        });
        return command;
    }
}
