using LocalDiffusion.Errors;

namespace LocalDiffusion.Cli.Batch;

/// <summary>
/// The output folder of a batch. A picture is written to a hidden temporary name beside its final one, flushed, then
/// renamed into place: a file with the final name is always whole, so a killed run leaves nothing that counts as done.
/// </summary>
internal sealed class BatchFolder
{
    private static readonly byte[] PngEnd = [0, 0, 0, 0, (byte)'I', (byte)'E', (byte)'N', (byte)'D', 0xAE, 0x42, 0x60, 0x82];

    private BatchFolder(string path) => Path = path;

    /// <summary>The folder.</summary>
    public string Path { get; }

    /// <summary>Creates the folder if missing and checks that files can be made in it; errors name --out-dir.</summary>
    public static BatchFolder Open(string path)
    {
        if (File.Exists(path)) throw new InvalidRequestException("--out-dir", null, null, called => $"{called} '{path}' is a file; give a folder (it is created if missing).");
        try
        {
            Directory.CreateDirectory(path);
            using (File.Create(System.IO.Path.Combine(path, $".localdiffusion-write-test-{Guid.NewGuid():N}"), 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidRequestException("--out-dir", null, null, called => $"{called} '{path}' cannot be written: {e.Message}", e);
        }
        return new BatchFolder(path);
    }

    /// <summary>Where the picture of <paramref name="prompt"/> goes.</summary>
    public string PathOf(BatchPrompt prompt) => System.IO.Path.Combine(Path, prompt.FileName);

    // Named by the picture alone: only the shard that owns a prompt ever writes it, so a restart finds its own leftovers.
    private string TempOf(BatchPrompt prompt) => System.IO.Path.Combine(Path, $".{prompt.FileName}.partial");

    /// <summary>
    /// Whether the picture is there and whole (ends with PNG's IEND chunk; the rename makes anything else unlikely,
    /// but a file copied in by hand is checked the same way). Removes the prompt's leftover temporary file.
    /// </summary>
    public bool IsDone(BatchPrompt prompt)
    {
        File.Delete(TempOf(prompt));
        var path = PathOf(prompt);
        if (!File.Exists(path)) return false;
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        if (stream.Length < PngEnd.Length) return false;
        stream.Seek(-PngEnd.Length, SeekOrigin.End);
        var tail = new byte[PngEnd.Length];
        stream.ReadExactly(tail);
        return tail.AsSpan().SequenceEqual(PngEnd);
    }

    /// <summary>Writes the picture whole under its final name (replacing an incomplete one).</summary>
    public void Write(BatchPrompt prompt, byte[] png)
    {
        var temp = TempOf(prompt);
        try
        {
            using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write))
            {
                stream.Write(png);
                stream.Flush(flushToDisk: true); // on shared storage too: the rename must never publish unwritten bytes
            }
            File.Move(temp, PathOf(prompt), overwrite: true);
        }
        finally
        {
            File.Delete(temp);
        }
    }
}
