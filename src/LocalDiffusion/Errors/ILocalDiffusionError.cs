namespace LocalDiffusion.Errors;

/// <summary>An exception that states its kind and its culprit as data; every error the engine raises on purpose is one.</summary>
public interface ILocalDiffusionError
{
    /// <summary>The kind, which decides the CLI's exit code and the server's status (<see cref="ErrorContract"/>).</summary>
    ErrorKind Kind { get; }

    /// <summary>What is at fault: the field and its value, the file and key, the stage and step.</summary>
    ErrorCulprit Culprit { get; }

    /// <summary>The message with the culprit field called <paramref name="fieldName"/> (a CLI flag, an API field).</summary>
    string Describe(string fieldName);
}
