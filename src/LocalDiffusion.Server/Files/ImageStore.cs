using System.Security.Cryptography;
using System.Text.RegularExpressions;
using LocalDiffusion.Imaging;
using Microsoft.Extensions.Logging;

namespace LocalDiffusion.Server.Files;

/// <summary>
/// Images handed out by URL: written to the output folder as <c>{id}.{ext}</c> with a random 128-bit id, served only
/// for names of exactly that form (no path can be named from outside), and deleted once older than the TTL. The
/// folder is the only state: replicas pointed at one shared folder serve each other's images.
/// </summary>
internal sealed partial class ImageStore : IDisposable
{
    private readonly bool _ownsDirectory;
    private readonly ILogger _logger;
    private readonly Timer _cleanup;

    public ImageStore(string? directory, TimeSpan ttl, ILogger logger)
    {
        _logger = logger;
        Ttl = ttl;
        _ownsDirectory = directory is null;
        Directory = Path.GetFullPath(directory ?? Path.Combine(Path.GetTempPath(), "localdiffusion-images-" + Guid.NewGuid().ToString("N")));
        System.IO.Directory.CreateDirectory(Directory);
        var period = TimeSpan.FromTicks(Math.Clamp(ttl.Ticks / 4, TimeSpan.FromSeconds(1).Ticks, TimeSpan.FromMinutes(1).Ticks));
        _cleanup = new Timer(_ => Cleanup(), null, period, period);
    }

    public string Directory { get; }

    public TimeSpan Ttl { get; }

    [GeneratedRegex("^[0-9a-f]{32}\\.(png|jpeg|webp)$", RegexOptions.CultureInvariant)]
    private static partial Regex IssuedName();

    /// <summary>Stores an image and returns its file name (<c>{id}.{ext}</c>).</summary>
    public async Task<string> SaveAsync(byte[] bytes, ImageFormat format, CancellationToken cancellationToken)
    {
        var name = $"{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16))}.{ImageEncoder.Extension(format)}";
        var final = Path.Combine(Directory, name);
        // Written under a name no route accepts, then renamed: a reader (or another replica) never sees half a file.
        var partial = final + ".partial";
        await File.WriteAllBytesAsync(partial, bytes, cancellationToken);
        File.Move(partial, final);
        return name;
    }

    /// <summary>The file of an issued, unexpired image name; false for anything else.</summary>
    public bool TryGet(string name, out string path, out string contentType)
    {
        path = "";
        contentType = "";
        if (!IssuedName().IsMatch(name)) return false;
        var candidate = Path.Combine(Directory, name);
        var info = new FileInfo(candidate);
        if (!info.Exists || DateTime.UtcNow - info.LastWriteTimeUtc > Ttl) return false;
        path = candidate;
        contentType = ImageEncoder.MediaType(ImageEncoder.Parse(Path.GetExtension(name).TrimStart('.'))!.Value);
        return true;
    }

    /// <summary>Deletes issued images older than the TTL (and partial files left by a crash).</summary>
    public int Cleanup()
    {
        var deleted = 0;
        try
        {
            foreach (var file in new DirectoryInfo(Directory).EnumerateFiles())
            {
                var issued = IssuedName().IsMatch(file.Name) || (file.Name.EndsWith(".partial", StringComparison.Ordinal) && IssuedName().IsMatch(file.Name[..^8]));
                if (!issued || DateTime.UtcNow - file.LastWriteTimeUtc <= Ttl) continue;
                try
                {
                    file.Delete();
                    deleted++;
                }
                catch (IOException) { } // another replica deleted it first, or it is being read: next round
            }
        }
        catch (DirectoryNotFoundException) { }
        if (deleted > 0) _logger.LogDebug("Deleted {Count} expired image(s) from {Directory}", deleted, Directory);
        return deleted;
    }

    public void Dispose()
    {
        _cleanup.Dispose();
        if (!_ownsDirectory) return;
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException e)
        {
            _logger.LogWarning("Could not remove the image folder {Directory}: {Message}", Directory, e.Message);
        }
    }
}
