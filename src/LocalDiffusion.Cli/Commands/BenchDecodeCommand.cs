using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using LocalDiffusion.Decoding;
using Spectre.Console;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Cli.Commands;

/// <summary>
/// <c>localdiffusion bench decode</c>: the time one decode takes with each decoder given (a full VAE, a TAESD), on the same
/// seeded latents: what a picture's decoding costs, and what a live preview costs per step it is made at.
/// </summary>
internal static class BenchDecodeCommand
{
    public static Command Create(IAnsiConsole console)
    {
        var vaes = new Option<string[]>("--vae") { Description = "A decoder to time (repeatable): an .onnx file or folder, as generate's --vae takes; a VAE or a TAESD.", Required = true, AllowMultipleArgumentsPerToken = false };
        var size = new Option<string>("--size") { Description = "Image size WxH (latents of WxH/8).", DefaultValueFactory = _ => "512x512" };
        var channels = new Option<int>("--channels") { Description = "Latent channels (4: SD 1.x/2.x/XL; 16: SD 3, FLUX).", DefaultValueFactory = _ => 4 };
        var repeats = new Option<int>("--repeats") { Description = "Timed decodes after the first; the median is reported.", DefaultValueFactory = _ => 3 };
        var device = new Option<string>("--device") { Description = "auto | cpu | cuda[:N] | ….", DefaultValueFactory = _ => "cpu" };
        var threads = new Option<int?>("--threads") { Description = "CPU threads per operator (default: ONNX Runtime's choice)." };
        var command = new Command("decode", "Time one decode with each decoder given (full VAE or TAESD) on the same seeded latents: a picture's decode, and a live preview's cost per step.")
        {
            vaes, size, channels, repeats, device, threads,
        };
        // The same ONNX Runtime knobs as generate (--session-config, --prepack-weights, --no-fuse-attention …), so a
        // decoder's session settings can be compared here one decode at a time.
        var engine = new EngineOptions();
        engine.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var (width, height) = ParseSize(parse.GetValue(size)!);
            var count = parse.GetValue(repeats);
            if (count is < 1 or > 1000) throw new InvalidRequestException("--repeats", null, null, called => $"{called} is {count}; it must be between 1 and 1000.");
            var latentChannels = parse.GetValue(channels);
            if (latentChannels is < 1 or > 64) throw new InvalidRequestException("--channels", null, null, called => $"{called} is {latentChannels}; it must be between 1 and 64 (4 or 16 in practice).");
            int h = height / 8, w = width / 8;
            var latents = SeededLatents(latentChannels * h * w, 42);
            var options = engine.Apply(parse, new PipelineOptions { Device = parse.GetValue(device)!, IntraOpThreads = parse.GetValue(threads), UseModelCache = false });
            var table = new Table().AddColumns("decoder", "kind", "load ms", "first decode ms", $"decode ms (median of {count})");
            var ci = CultureInfo.InvariantCulture;
            foreach (var path in parse.GetValue(vaes)!)
            {
                var clock = Stopwatch.StartNew();
                using var decoder = LatentDecoder.Open(path, latentChannels, options: options);
                var load = clock.Elapsed.TotalMilliseconds;
                clock.Restart();
                await decoder.DecodeAsync(latents, h, w, cancellationToken);
                var first = clock.Elapsed.TotalMilliseconds;
                var times = new double[count];
                for (var i = 0; i < count; i++)
                {
                    clock.Restart();
                    await decoder.DecodeAsync(latents, h, w, cancellationToken);
                    times[i] = clock.Elapsed.TotalMilliseconds;
                }
                Array.Sort(times);
                table.AddRow(Markup.Escape(decoder.FilePath), decoder.Kind, load.ToString("F0", ci), first.ToString("F1", ci), times[count / 2].ToString("F1", ci));
            }
            console.MarkupLineInterpolated($"{width}x{height}, {latentChannels} latent channels, {options.Device}, {Environment.ProcessorCount} logical CPUs");
            console.Write(table);
            return 0;
        });
        return command;
    }

    private static (int Width, int Height) ParseSize(string value)
    {
        if (ValueText.TryParseSize(value, out var w, out var h)
            && w >= 8 && h >= 8 && w % 8 == 0 && h % 8 == 0 && w <= 8192 && h <= 8192)
            return (w, h);
        throw new InvalidRequestException("--size", null, null, called => $"{called} is '{value}'; give WxH in pixels, multiples of 8 from 8 to 8192, e.g. 512x512.");
    }

    // Standard normal latents (Box–Muller on a seeded System.Random): the same for every decoder of one run.
    private static float[] SeededLatents(int count, int seed)
    {
        var random = new Random(seed);
        var values = new float[count];
        for (var i = 0; i < count; i++)
            values[i] = (float)(Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()));
        return values;
    }
}
