using LocalDiffusion.Onnx;

namespace LocalDiffusion.Tests.Performance;

/// <summary>The cache's content check on a file too large to hash whole at every open (issue 20, case 2): what it catches and what it misses.</summary>
public class CacheFileCheckTests
{
    private const long Limit = 1 << 20; // stands in for CacheFileCheck.WholeFileLimit, so the file can stay small

    private static (string Path, CacheFileRecord Record, DateTime Time) Stored(TempDirectory dir, int megabytes = 3)
    {
        var path = Path.Combine(dir.Path, "model.onnx.data");
        var bytes = new byte[megabytes << 20];
        new Random(1).NextBytes(bytes);
        File.WriteAllBytes(path, bytes);
        return (path, CacheFileCheck.Record(path, Limit), File.GetLastWriteTimeUtc(path));
    }

    private static void Flip(string path, long offset, DateTime restoreTime)
    {
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite))
        {
            stream.Position = offset;
            var b = stream.ReadByte();
            stream.Position = offset;
            stream.WriteByte((byte)(b ^ 0xff));
        }
        File.SetLastWriteTimeUtc(path, restoreTime);
    }

    [Fact]
    public void DamageInASampledBlockIsCaughtWithTheTimeRestored()
    {
        using var dir = new TempDirectory();
        var (path, record, time) = Stored(dir);
        Assert.Null(CacheFileCheck.Verify(path, record, out _, Limit));
        Flip(path, 10, time); // the first block is always sampled
        Assert.NotNull(CacheFileCheck.Verify(path, record, out _, Limit));
    }

    [Fact]
    public void AnyDamageIsCaughtWhenTheTimeChanged()
    {
        using var dir = new TempDirectory();
        var (path, record, time) = Stored(dir);
        var between = CacheFileCheck.BlockBytes + 100; // between the first and second sampled blocks
        Flip(path, between, time.AddSeconds(5));
        Assert.Contains("modified", CacheFileCheck.Verify(path, record, out _, Limit));
    }

    [Fact]
    public void DamageBetweenSampledBlocksWithTheTimeRestoredIsMissedAsDocumented()
    {
        // 32 MB: 256 blocks of 64 KB sample half of it, so a byte just after the first block is in no block.
        using var dir = new TempDirectory();
        var (path, record, time) = Stored(dir, megabytes: 32);
        Flip(path, CacheFileCheck.BlockBytes + 1000, time);
        Assert.Null(CacheFileCheck.Verify(path, record, out _, Limit));
        // The same damage with the time left as the writer set it is caught by the full hash.
        File.SetLastWriteTimeUtc(path, time.AddSeconds(5));
        Assert.NotNull(CacheFileCheck.Verify(path, record, out _, Limit));
    }
}
