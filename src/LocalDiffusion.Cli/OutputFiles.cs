using LocalDiffusion.Errors;

namespace LocalDiffusion.Cli;

/// <summary>
/// Checks every file a command will write before any work starts: a usable file name, in a folder that exists or can
/// be made and can be written, not one of the command's other outputs or inputs, and not an existing file unless
/// --overwrite was given. Each problem is an <see cref="ArgumentException"/> naming the flag.
/// </summary>
internal static class OutputFiles
{
    private static readonly StringComparer PathComparer =
        OperatingSystem.IsWindows() || OperatingSystem.IsMacOS() ? StringComparer.OrdinalIgnoreCase : StringComparer.Ordinal;

    /// <summary>Checks <paramref name="outputs"/> (flag, path) against each other and the <paramref name="inputs"/> the command reads.</summary>
    public static void Check(IReadOnlyList<(string Flag, string Path)> outputs, IReadOnlyList<(string Flag, string Path)> inputs, bool overwrite)
    {
        var seen = new Dictionary<string, string>(PathComparer);
        foreach (var (flag, path) in outputs)
        {
            if (string.IsNullOrWhiteSpace(path))
                throw new InvalidRequestException(flag, null, null, called => $"{called} is empty; give a file name such as output.png.");
            if (path.EndsWith(Path.DirectorySeparatorChar) || path.EndsWith(Path.AltDirectorySeparatorChar) || Directory.Exists(path))
                throw new InvalidRequestException(flag, null, null, called => $"{called} {path} is a folder; give a file name, e.g. {Path.Combine(path, "output.png")}.");
            var full = Path.GetFullPath(path);
            if (seen.TryGetValue(full, out var other))
                throw new InvalidRequestException(flag, null, null, called => $"{called} {path} is the same file as {other}; give each output its own file.");
            seen[full] = flag;
            foreach (var (inputFlag, input) in inputs)
                if (PathComparer.Equals(full, Path.GetFullPath(input)))
                    throw new InvalidRequestException(flag, null, null, called => $"{called} {path} is the file {inputFlag} reads; write to another file.");
            if (!overwrite && File.Exists(full))
                throw new InvalidRequestException(flag, null, null, called => $"{called} {path} already exists; choose another file or pass --overwrite (it was not changed).");
            CheckFolder(flag, path, full);
        }
    }

    // The nearest existing ancestor must be a folder this process can create files in.
    private static void CheckFolder(string flag, string path, string full)
    {
        var folder = Path.GetDirectoryName(full)!;
        while (!Directory.Exists(folder))
        {
            if (File.Exists(folder))
                throw new InvalidRequestException(flag, null, null, called => $"{called} {path}: {folder} is a file, not a folder.");
            folder = Path.GetDirectoryName(folder) ?? throw new InvalidRequestException(flag, null, null, called => $"{called} {path}: no existing folder above it.");
        }
        var probe = Path.Combine(folder, $".localdiffusion-write-test-{Guid.NewGuid():N}");
        try
        {
            using (File.Create(probe, 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidRequestException(flag, null, null, called => $"{called} {path}: cannot write in {folder} ({e.Message}).", e);
        }
    }
}
