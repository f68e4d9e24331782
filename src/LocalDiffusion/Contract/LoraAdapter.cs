namespace LocalDiffusion;

/// <summary>A LoRA file and the weight (strength) it is applied with, as A1111's <c>&lt;lora:NAME:WEIGHT&gt;</c>.</summary>
/// <param name="Path">The <c>.safetensors</c> file.</param>
/// <param name="Weight">The multiplier w in W' = W + w·(alpha/rank)·up·down (1 by default).</param>
public sealed record LoraAdapter(string Path, float Weight = 1f)
{
    /// <summary>What identifies the adapter's effect: the full path, its size and time, and the weight.</summary>
    internal string Identity
    {
        get
        {
            var info = new FileInfo(Path);
            var stamp = info.Exists ? $"{info.Length}:{info.LastWriteTimeUtc.Ticks}" : "missing";
            return $"{System.IO.Path.GetFullPath(Path)}|{stamp}|{Weight.ToString("R", System.Globalization.CultureInfo.InvariantCulture)}";
        }
    }
}
