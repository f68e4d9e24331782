using LocalDiffusion.Families;
using System.Collections.Concurrent;
using System.Globalization;
using LocalDiffusion.ControlNet;
using LocalDiffusion.Denoising;
using LocalDiffusion.Onnx;
using LocalDiffusion.Vae;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Pipeline;

/// <summary>
/// ControlNets: each loaded once and kept; a request's units are checked against the UNet before any work (residual
/// inputs, family, values), and at denoising time become a <see cref="ControlGuidance"/> that fills the UNet's residual
/// inputs before every call.
/// </summary>
internal sealed class ControlNetSet(FamilyModel model, SessionFactory sessions, PipelineOptions options) : IDisposable
{
    private readonly ConcurrentDictionary<string, Lazy<ControlNetModel>> _controlNets = new(StringComparer.Ordinal);

    /// <summary>
    /// The ControlNet in <paramref name="path"/> (a folder holding model.onnx, or the file), loaded on this pipeline's device
    /// the first time and kept until the pipeline is disposed; requests naming <see cref="ControlNetUnit.ModelPath"/> use it.
    /// </summary>
    /// <exception cref="ModelLoadException">The file is missing, corrupt or not a ControlNet.</exception>
    public ControlNetModel Load(string path)
    {
        var file = ControlNetModel.ResolvePath(path);
        var entry = _controlNets.GetOrAdd(file, f => new Lazy<ControlNetModel>(() =>
        {
            var net = ControlNetModel.Load(f, sessions);
            net.Component.ReleaseWhenIdle = options.LowMemory; // held only while a generation uses it, as the UNet
            return net;
        }));
        try
        {
            return entry.Value;
        }
        catch
        {
            _controlNets.TryRemove(new KeyValuePair<string, Lazy<ControlNetModel>>(file, entry)); // a fixed file may be tried again
            throw;
        }
    }

    // Every unit's values, image and network, before any work.
    public void Check(GenerationRequest r)
    {
        if (r.ControlNets is not { Count: > 0 } units) return;
        var unet = model.ControlTarget ?? throw new ModelIncompatibleException(nameof(r.ControlNets), model.Info.Family.Name,
            _ => $"ControlNets are not supported with {model.Info.Family.Name} (only SD 1.x/2.x and SDXL UNets exported with residual inputs).");
        for (var i = 0; i < units.Count; i++)
        {
            var u = units[i] ?? throw new InvalidRequestException(nameof(r.ControlNets), null, null, called => $"{called}[{i}] is null.");
            var field = $"ControlNets[{i}]";
            if (u.Image is null)
                throw new InvalidRequestException(nameof(r.ControlNets), null, null, _ => $"{field}.Image is missing: every ControlNet unit needs a control image.");
            if (!float.IsFinite(u.Scale) || u.Scale is < 0 or > StableDiffusionPipeline.MaxControlNetScale)
                throw new InvalidRequestException(nameof(r.ControlNets), u.Scale, null, _ => $"{field}.Scale is {Text(u.Scale)}; it must be between 0 and {Text(StableDiffusionPipeline.MaxControlNetScale)} (1 is diffusers' default).");
            if (!float.IsFinite(u.GuidanceStart) || !float.IsFinite(u.GuidanceEnd) || u.GuidanceStart is < 0 or > 1 || u.GuidanceEnd is < 0 or > 1 || u.GuidanceStart >= u.GuidanceEnd)
                throw new InvalidRequestException(nameof(r.ControlNets), null, "0 ≤ start < end ≤ 1", _ => $"{field}: GuidanceStart {Text(u.GuidanceStart)} and GuidanceEnd {Text(u.GuidanceEnd)} must lie in [0, 1] with start < end.");
            if (u.Preprocessor == ControlPreprocessor.Canny
                && (!float.IsFinite(u.CannyLowThreshold) || !float.IsFinite(u.CannyHighThreshold) || u.CannyLowThreshold < 0 || u.CannyHighThreshold < u.CannyLowThreshold))
                throw new InvalidRequestException(nameof(r.ControlNets), null, "0 ≤ low ≤ high", _ => $"{field}: Canny thresholds {Text(u.CannyLowThreshold)}/{Text(u.CannyHighThreshold)} must be ≥ 0 with low ≤ high (A1111: 100/200).");
            if (!Enum.IsDefined(u.Preprocessor))
                throw new InvalidRequestException(nameof(r.ControlNets), u.Preprocessor, null, _ => $"{field}.Preprocessor is not one of none, canny.");
            var net = u.ModelPath is { } path ? Load(path)
                : throw new InvalidRequestException(nameof(r.ControlNets), null, null, _ => $"{field} names no ControlNet: set ModelPath (its folder or model.onnx).");
            net.CheckFits(unet);
        }
    }

    private static string Text(float v) => v.ToString(CultureInfo.InvariantCulture);

    // The request's units bound to this denoising batch: control images preprocessed and resized to the output size, and
    // the UNet rows the ControlNets compute (guess mode with CFG: each run's conditional rows only).
    public ControlGuidance? Prepare(IReadOnlyList<GenerationRun> runs, IDenoiserConditioning bound)
    {
        var first = runs[0];
        if (first.Request.ControlNets is not { Count: > 0 } units) return null;
        // Validation refused ControlNets for a family without a UNet to feed, so the conditioning is the UNet's.
        var (unet, conditioning) = (model.ControlTarget!, (UNet.Conditioning)bound);
        int width = first.LatentW * VaeDecoder.Factor, height = first.LatentH * VaeDecoder.Factor;
        var prepared = units.Select(u => (Load(u.ModelPath!), u, ControlImage.Prepare(u, width, height))).ToList();
        var condOnly = first.Request.ControlNetGuessMode && first.UseCfg;
        var rows = new List<int>(conditioning.Inputs.Batch);
        var offset = 0;
        foreach (var run in runs)
        {
            var n = run.Request.ImageCount;
            var perRun = first.UseCfg ? 2 * n : n;
            for (var r = condOnly ? n : 0; r < perRun; r++) rows.Add(offset + r);
            offset += perRun;
        }
        return new ControlGuidance(prepared, unet, conditioning, [.. rows], first.Request.ControlNetGuessMode,
            first.Start.BeginIndex, first.Scheduler.Scheduler.Timesteps.Count, first.LatentH, first.LatentW);
    }

    public void Dispose()
    {
        foreach (var entry in _controlNets.Values)
            if (entry.IsValueCreated) entry.Value.Dispose();
        _controlNets.Clear();
    }
}
