using System.Text.RegularExpressions;
using LocalDiffusion.Errors;
using LocalDiffusion.Onnx;
using LocalDiffusion.Tokenizer;

namespace LocalDiffusion.Cli;

/// <summary>
/// Turns an exception into one line for the user and an exit code: whose fault it is decides the code, and a library
/// property name in the message becomes the flag the user typed. Anything unexpected is reported as a bug, with the
/// stack trace in a log file.
/// </summary>
internal static partial class ErrorReport
{
    // GenerationRequest / PipelineOptions properties → the generate command's flags.
    private static readonly Dictionary<string, string> Flags = new(StringComparer.Ordinal)
    {
        ["Prompt"] = "--prompt",
        ["NegativePrompt"] = "--negative-prompt",
        ["Steps"] = "--steps",
        ["GuidanceScale"] = "--guidance",
        ["Width"] = "--width",
        ["Height"] = "--height",
        ["ImageCount"] = "--n",
        ["Seed"] = "--seed",
        ["Scheduler"] = "--scheduler",
        ["InitialLatents"] = "--latents",
        ["refiner"] = "--refiner",
        ["switchAt"] = "--refiner-switch",
        ["IntraOpThreads"] = "--threads",
        ["Device"] = "--device",
        ["Cuda"] = "--cuda-options",
        ["TensorRT"] = "--tensorrt-options",
        ["CpuArenaExtendStrategy"] = "--arena-extend-strategy",
        ["OriginalSize"] = "--original-size",
        ["CropsCoordsTopLeft"] = "--crop",
        ["TargetSize"] = "--target-size",
        ["NegativeOriginalSize"] = "--negative-original-size",
        ["NegativeCropsCoordsTopLeft"] = "--negative-crop",
        ["NegativeTargetSize"] = "--negative-target-size",
        ["AestheticScore"] = "--aesthetic-score",
        ["NegativeAestheticScore"] = "--negative-aesthetic-score",
        // ServerOptions → serve's flags.
        ["Port"] = "--port",
        ["Host"] = "--host",
        ["MaxQueue"] = "--max-queue",
        ["Concurrency"] = "--concurrency",
        ["MaxBatch"] = "--max-batch",
        ["ImageTtl"] = "--image-ttl-minutes",
        ["PublicUrl"] = "--public-url",
        ["MaxPixels"] = "--max-pixels",
        ["OutputDirectory"] = "--output-dir",
        ["VaeDecoderPath"] = "--vae",
        ["PreviewDecoderPath"] = "--preview-vae",
        ["CacheDirectory"] = "--cache-dir",
        ["PromptCacheEntries"] = "--prompt-cache",
    };

    public static async Task<int> WriteAsync(Exception e, TextWriter error, bool verbose)
    {
        // The exit code is the contract's (Errors/ErrorContract.cs), shared with the server's statuses.
        var kind = ErrorContract.KindOf(e);
        var code = ErrorContract.For(kind).ExitCode;
        var line = kind switch
        {
            ErrorKind.Cancelled => "cancelled",
            ErrorKind.Internal => null,
            ErrorKind.InvalidRequest when e is ArgumentException a => $"error: {WithFlags(a)}",
            _ => $"error: {e.Message}",
        };
        if (line is not null)
        {
            await error.WriteLineAsync(line);
            if (verbose && code != ExitCodes.Cancelled) await error.WriteLineAsync(e.ToString());
            return code;
        }
        var log = WriteLog(e);
        await error.WriteLineAsync($"internal error: {e.GetType().Name}: {FirstLine(e.Message)}");
        await error.WriteLineAsync(
            $"This is a bug in LocalDiffusion, not something you did. The details are in {log ?? "(no log file could be written)"}; run with --verbose to print them.");
        if (verbose) await error.WriteLineAsync(e.ToString());
        return ExitCodes.InternalError;
    }

    /// <summary>The message with the library's property name replaced by the CLI flag and .NET's parameter suffixes removed.</summary>
    public static string WithFlags(ArgumentException e)
    {
        var message = ParameterSuffix().Replace(e.Message, "").TrimEnd();
        return e.ParamName is { } name && Flags.TryGetValue(name, out var flag)
            // The word, not the same letters inside a path or a file name (models/tiny-sdxl-refiner stays as it is).
            ? Regex.Replace(message, $@"(?<![\w\-/\\.]){Regex.Escape(name)}(?![\w\-/\\.])", flag)
            : message;
    }

    private static string? WriteLog(Exception e)
    {
        try
        {
            var path = Path.Combine(Path.GetTempPath(), $"localdiffusion-error-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Environment.ProcessId}.log");
            File.WriteAllText(path, $"{DateTime.UtcNow:O} localdiffusion {Environment.CommandLine}{Environment.NewLine}{e}{Environment.NewLine}");
            return path;
        }
        catch (Exception logError) when (logError is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static string FirstLine(string s)
    {
        var i = s.IndexOf('\n');
        return (i < 0 ? s : s[..i]).Trim();
    }

    [GeneratedRegex(@" \(Parameter '[^']*'\)|\s*Actual value was [^\n]*", RegexOptions.Multiline)]
    private static partial Regex ParameterSuffix();
}
