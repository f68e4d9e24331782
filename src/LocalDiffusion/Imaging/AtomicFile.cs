namespace LocalDiffusion.Imaging;

/// <summary>
/// Writes a whole file or nothing: the bytes go to a temporary file beside the target, which is then renamed over it.
/// A failure half-way (disk full, a crash) leaves whatever the user had at the path untouched.
/// </summary>
internal static class AtomicFile
{
    /// <summary>Writes <paramref name="bytes"/> to <paramref name="path"/>; without <paramref name="overwrite"/> an existing file is an <see cref="IOException"/>.</summary>
    public static void Write(string path, ReadOnlySpan<byte> bytes, bool overwrite)
    {
        var full = Path.GetFullPath(path);
        var directory = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(directory);
        var temp = Path.Combine(directory, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write))
                stream.Write(bytes);
            if (!overwrite && File.Exists(full))
                throw new IOException($"{path} already exists; choose another output path (it was not overwritten).");
            File.Move(temp, full, overwrite);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
