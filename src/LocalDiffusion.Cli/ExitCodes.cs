namespace LocalDiffusion.Cli;

/// <summary>The process exit codes of <c>localdiffusion</c> (documented in the README's CLI reference).</summary>
internal static class ExitCodes
{
    /// <summary>Done.</summary>
    public const int Success = 0;

    /// <summary>Bad input: a flag's value, a request value the model cannot take, an input file that cannot be read, an output path that cannot be used.</summary>
    public const int InvalidInput = 1;

    /// <summary>The model folder (or one of its files) is missing, broken or unsupported, or the execution provider is unavailable.</summary>
    public const int ModelError = 2;

    /// <summary>The generation produced NaN/infinity; the message says at which stage and step.</summary>
    public const int NumericalFailure = 3;

    /// <summary>Reading or writing a file failed while working (disk full, permissions changed).</summary>
    public const int IoError = 4;

    /// <summary>The machine cannot hold the model (its weights do not fit in memory).</summary>
    public const int ResourceLimit = 5;

    /// <summary>A bug in LocalDiffusion: anything not covered above. The stack trace goes to a log file (and stderr with --verbose).</summary>
    public const int InternalError = 70;

    /// <summary>Cancelled (Ctrl+C).</summary>
    public const int Cancelled = 130;
}
