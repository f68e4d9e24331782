using System.IO.Hashing;

namespace LocalDiffusion.Onnx;

/// <summary>What the model cache records of one stored file to tell later whether its content is still what was written.</summary>
/// <param name="Bytes">Its size.</param>
/// <param name="Ticks">Its last write time (UTC ticks) when recorded.</param>
/// <param name="Sampled">XxHash128 of its sampled blocks (<see cref="CacheFileCheck.Sampled"/>), hex.</param>
/// <param name="Full">XxHash128 of all of it, hex.</param>
internal sealed record CacheFileRecord(long Bytes, long Ticks, string Sampled, string Full);

/// <summary>
/// The model cache's content check. A full hash of every file at every open would cost too much: XxHash128 runs at
/// 6.6 GB/s from the page cache (SHA-256 at 0.9–1.4 GB/s, both measured on a 3.3 GB file), i.e. 0.5 s on SD 1.5's
/// 3.3 GB UNet weights when warm and several seconds when the file must come from disk — against a cached start of
/// 1.1–1.6 s. So each open checks size and modification time, and then either hashes the whole file again (the
/// modification time changed: whatever wrote it is caught) or, when the time is unchanged, only sampled blocks
/// (files up to <see cref="WholeFileLimit"/> are always hashed whole: the graph, the text encoder, the VAE).
/// What it misses: damage to a file larger than <see cref="WholeFileLimit"/> that keeps its size and its
/// modification time (restored, or a writer that does not update it; silent disk corruption) and falls wholly
/// between the sampled blocks — about 99.5 % of a 3.3 GB file lies between them.
/// </summary>
internal static class CacheFileCheck
{
    /// <summary>Files up to this size are hashed whole at every open (about 40 ms from the page cache at the measured speed).</summary>
    public const long WholeFileLimit = 256L << 20;

    /// <summary>Blocks read from a larger file at every open, evenly spaced, the first and last included.</summary>
    public const int SampledBlocks = 256;

    /// <summary>Size of a sampled block: 256 × 64 KB = 16 MB read per large file.</summary>
    public const int BlockBytes = 64 << 10;

    /// <summary>The record of <paramref name="path"/> as it is now.</summary>
    public static CacheFileRecord Record(string path) => Record(path, WholeFileLimit);

    /// <summary>The record of <paramref name="path"/>, sampling files over <paramref name="wholeFileLimit"/> bytes.</summary>
    public static CacheFileRecord Record(string path, long wholeFileLimit)
    {
        var info = new FileInfo(path);
        return new CacheFileRecord(info.Length, info.LastWriteTimeUtc.Ticks, Sampled(path, wholeFileLimit), Full(path));
    }

    /// <summary>
    /// Null when <paramref name="path"/> still holds what <paramref name="recorded"/> describes, else why not. A file
    /// whose modification time changed but whose full hash matches is accepted, and <paramref name="touched"/> is set
    /// so the caller can record the new time (the next open is cheap again).
    /// </summary>
    public static string? Verify(string path, CacheFileRecord recorded, out bool touched, long wholeFileLimit = WholeFileLimit)
    {
        touched = false;
        var info = new FileInfo(path);
        if (!info.Exists) return "missing";
        if (info.Length != recorded.Bytes) return $"{info.Length} bytes, {recorded.Bytes} were written";
        if (info.LastWriteTimeUtc.Ticks != recorded.Ticks)
        {
            if (Full(path) != recorded.Full) return "modified since it was written (its content hash differs)";
            touched = true;
            return null;
        }
        return Sampled(path, wholeFileLimit) == recorded.Sampled ? null : "its content hash differs from the one recorded when it was written";
    }

    /// <summary>XxHash128 of the whole file.</summary>
    public static string Full(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20, FileOptions.SequentialScan);
        var hash = new XxHash128();
        hash.Append(stream);
        return Convert.ToHexString(hash.GetCurrentHash());
    }

    /// <summary>XxHash128 of the whole file when it is at most <paramref name="wholeFileLimit"/> bytes, else of its sampled blocks and its size.</summary>
    public static string Sampled(string path, long wholeFileLimit = WholeFileLimit)
    {
        var length = new FileInfo(path).Length;
        if (length <= wholeFileLimit) return Full(path);
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.RandomAccess);
        var hash = new XxHash128();
        hash.Append(BitConverter.GetBytes(length));
        var block = new byte[BlockBytes];
        var last = Math.Max(0, length - BlockBytes);
        for (var i = 0; i < SampledBlocks; i++)
        {
            var offset = last * i / (SampledBlocks - 1);
            var read = RandomAccess.Read(file, block, offset);
            hash.Append(block.AsSpan(0, read));
        }
        return Convert.ToHexString(hash.GetCurrentHash());
    }
}
