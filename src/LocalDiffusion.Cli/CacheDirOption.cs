using System.CommandLine;
using LocalDiffusion.Onnx;

namespace LocalDiffusion.Cli;

/// <summary>The <c>--cache-dir</c> option every command that loads a model takes.</summary>
internal static class CacheDirOption
{
    public static Option<string?> Create() => new("--cache-dir")
    {
        Description = $"Optimised-model cache folder (default: ${ModelCache.EnvironmentVariable}, else {ModelCache.DefaultDirectory}). `localdiffusion cache clear` empties it.",
    };

    /// <summary>The folder to use: the option's value, else the default.</summary>
    public static string Resolve(ParseResult parse, Option<string?> option) => parse.GetValue(option) ?? ModelCache.DefaultDirectory;
}
