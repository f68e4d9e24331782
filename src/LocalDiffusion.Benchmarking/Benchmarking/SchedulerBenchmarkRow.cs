using System.Text.Json.Serialization;
using LocalDiffusion.Imaging;

namespace LocalDiffusion.Benchmarking;

/// <summary>One scheduler at one step count, over all cases of a benchmark.</summary>
public sealed record SchedulerBenchmarkRow
{
    /// <summary>The scheduler's registry id, e.g. <c>dpmpp_2m</c>.</summary>
    public required string SchedulerId { get; init; }

    /// <summary>Its display name, e.g. <c>DPM++ 2M</c>.</summary>
    public required string DisplayName { get; init; }

    /// <summary>Whether it draws fresh noise while sampling (it then converges to a different solution than the ODE reference).</summary>
    public required bool IsStochastic { get; init; }

    /// <summary>Requested steps.</summary>
    public required int Steps { get; init; }

    /// <summary>UNet evaluations per generation (more than <see cref="Steps"/> for second-order samplers).</summary>
    public required int UnetEvaluations { get; init; }

    /// <summary>Median wall time of one generation (text encoding, denoising and VAE decoding), in milliseconds.</summary>
    public required double WallMilliseconds { get; init; }

    /// <summary>Median wall time per step (<see cref="WallMilliseconds"/> / <see cref="Steps"/>), in milliseconds.</summary>
    public required double MillisecondsPerStep { get; init; }

    /// <summary>The largest peak resident memory of its runs, in bytes (see <see cref="SchedulerBenchmarkReport.MemoryMeasurement"/>).</summary>
    public required long PeakWorkingSetBytes { get; init; }

    /// <summary>Mean managed bytes allocated per generation.</summary>
    public required long AllocatedBytesPerRun { get; init; }

    /// <summary>RMSE of the final latents against the reference solution, pooled over cases.</summary>
    public required double LatentRmse { get; init; }

    /// <summary>PSNR of the final latents in dB, with the reference latents' range as the peak (+∞ when identical).</summary>
    public required double LatentPsnr { get; init; }

    /// <summary>RMSE of the decoded RGB8 pixels (0–255) against the reference images, pooled over cases.</summary>
    public required double ImageRmse { get; init; }

    /// <summary>PSNR of the decoded images in dB (peak 255; +∞ when identical).</summary>
    public required double ImagePsnr { get; init; }

    /// <summary>Mean prompt-adherence score (0–1) when a scorer was given; null otherwise.</summary>
    public double? Adherence { get; init; }

    /// <summary>The picture of the first case, for the image grid.</summary>
    [JsonIgnore]
    public GeneratedImage? Sample { get; init; }
}
