using System.CommandLine;

namespace LocalDiffusion.Cli;

/// <summary>The <c>--low-memory</c> flag (<see cref="PipelineOptions.LowMemory"/>) of the commands that keep a model loaded over several generations.</summary>
internal static class LowMemoryOption
{
    public static Option<bool> Create(string description) => new("--low-memory") { Description = description };
}
