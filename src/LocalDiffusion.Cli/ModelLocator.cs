namespace LocalDiffusion.Cli;

/// <summary>Finds the model to use when <c>--model</c> is not given: the shapes model that ships in the repo.</summary>
internal static class ModelLocator
{
    /// <summary>The shipped default model, relative to the repository root.</summary>
    public const string DefaultModel = "models/shapes";

    /// <summary>Environment variable that names a default model folder.</summary>
    public const string EnvironmentVariable = "LOCALDIFFUSION_MODEL";

    public static string Resolve(string? model)
    {
        if (!string.IsNullOrWhiteSpace(model)) return model;
        if (Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } fromEnv) return fromEnv;
        // Look upwards from the working directory, then from the program, for the repository's models/shapes.
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, DefaultModel);
                if (File.Exists(Path.Combine(candidate, "model_index.json"))) return candidate;
            }
        throw new DirectoryNotFoundException(
            $"No --model given, {EnvironmentVariable} is not set, and no {DefaultModel} folder was found above {Directory.GetCurrentDirectory()}: pass --model DIR.");
    }
}
