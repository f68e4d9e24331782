using LocalDiffusion.Errors;
using LocalDiffusion.Onnx;
using LocalDiffusion.Tokenizer;

namespace LocalDiffusion.Cli;

/// <summary>
/// Turns an exception into one line for the user and an exit code: whose fault it is decides the code (the contract's
/// table), and a typed error names its field by the flag the user typed (the contract's field names). Anything unexpected is reported as a bug, with the
/// stack trace in a log file.
/// </summary>
internal static class ErrorReport
{
    public static async Task<int> WriteAsync(Exception e, TextWriter error, bool verbose)
    {
        // The exit code is the contract's (Errors/ErrorContract.cs), shared with the server's statuses.
        var kind = ErrorContract.KindOf(e);
        var code = ErrorContract.For(kind).ExitCode;
        var line = kind switch
        {
            ErrorKind.Cancelled => "cancelled",
            ErrorKind.Internal => null,
            _ => $"error: {RequestFields.MessageFor(e, FrontEnd.Cli)}",
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
}
