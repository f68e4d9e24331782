using System.Collections.Concurrent;
using System.Globalization;
using LocalDiffusion.ControlNet;
using LocalDiffusion.Denoising;
using LocalDiffusion.Onnx;
using LocalDiffusion.Vae;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Pipeline;

// ControlNets: a request's units are checked against the UNet before any work (residual inputs, family, values), and at
// denoising time become a ControlGuidance that fills the UNet's residual inputs before every call.
public sealed partial class StableDiffusionPipeline
{
    private readonly ConcurrentDictionary<string, Lazy<ControlNetModel>> _controlNets = new(StringComparer.Ordinal);

    /// <summary>The largest <see cref="ControlNetUnit.Scale"/> accepted.</summary>
    public const float MaxControlNetScale = 10f;

    /// <summary>
    /// The ControlNet in <paramref name="path"/> (a folder holding model.onnx, or the file), loaded on this pipeline's device
    /// the first time and kept until the pipeline is disposed; requests naming <see cref="ControlNetUnit.ModelPath"/> use it.
    /// </summary>
    /// <exception cref="ModelLoadException">The file is missing, corrupt or not a ControlNet.</exception>
    public ControlNetModel LoadControlNet(string path)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var file = ControlNetModel.ResolvePath(path);
        var sessions = _sessions;
        var entry = _controlNets.GetOrAdd(file, f => new Lazy<ControlNetModel>(() =>
        {
            var model = ControlNetModel.Load(f, sessions);
            model.Component.ReleaseWhenIdle = _options.LowMemory; // held only while a generation uses it, as the UNet
            return model;
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
    private void CheckControlNets(GenerationRequest r)
    {
        if (r.ControlNets is not { Count: > 0 } units) return;
        var unet = _model.ControlTarget ?? throw new ModelIncompatibleException(nameof(r.ControlNets), Info.Family.Name,
            _ => $"ControlNets are not supported with {Info.Family.Name} (only SD 1.x/2.x and SDXL UNets exported with residual inputs).");
        for (var i = 0; i < units.Count; i++)
        {
            var u = units[i] ?? throw new InvalidRequestException(nameof(r.ControlNets), null, null, called => $"{called}[{i}] is null.");
            var field = $"ControlNets[{i}]";
            if (u.Image is null)
                throw new InvalidRequestException(nameof(r.ControlNets), null, null, _ => $"{field}.Image is missing: every ControlNet unit needs a control image.");
            if (!float.IsFinite(u.Scale) || u.Scale is < 0 or > MaxControlNetScale)
                throw new InvalidRequestException(nameof(r.ControlNets), u.Scale, null, _ => $"{field}.Scale is {Text(u.Scale)}; it must be between 0 and {Text(MaxControlNetScale)} (1 is diffusers' default).");
            if (!float.IsFinite(u.GuidanceStart) || !float.IsFinite(u.GuidanceEnd) || u.GuidanceStart is < 0 or > 1 || u.GuidanceEnd is < 0 or > 1 || u.GuidanceStart >= u.GuidanceEnd)
                throw new InvalidRequestException(nameof(r.ControlNets), null, "0 ≤ start < end ≤ 1", _ => $"{field}: GuidanceStart {Text(u.GuidanceStart)} and GuidanceEnd {Text(u.GuidanceEnd)} must lie in [0, 1] with start < end.");
            if (u.Preprocessor == ControlPreprocessor.Canny
                && (!float.IsFinite(u.CannyLowThreshold) || !float.IsFinite(u.CannyHighThreshold) || u.CannyLowThreshold < 0 || u.CannyHighThreshold < u.CannyLowThreshold))
                throw new InvalidRequestException(nameof(r.ControlNets), null, "0 ≤ low ≤ high", _ => $"{field}: Canny thresholds {Text(u.CannyLowThreshold)}/{Text(u.CannyHighThreshold)} must be ≥ 0 with low ≤ high (A1111: 100/200).");
            if (!Enum.IsDefined(u.Preprocessor))
                throw new InvalidRequestException(nameof(r.ControlNets), u.Preprocessor, null, _ => $"{field}.Preprocessor is not one of none, canny.");
            var model = u.ModelPath is { } path ? LoadControlNet(path)
                : throw new InvalidRequestException(nameof(r.ControlNets), null, null, _ => $"{field} names no ControlNet: set ModelPath (its folder or model.onnx).");
            model.CheckFits(unet);
        }
    }

    private static string Text(float v) => v.ToString(CultureInfo.InvariantCulture);

    // The request's units bound to this denoising batch: control images preprocessed and resized to the output size, and
    // the UNet rows the ControlNets compute (guess mode with CFG: each run's conditional rows only).
    private ControlGuidance? PrepareControl(IReadOnlyList<GenerationRun> runs, IDenoiserConditioning bound)
    {
        var first = runs[0];
        if (first.Request.ControlNets is not { Count: > 0 } units) return null;
        // Validation refused ControlNets for a family without a UNet to feed, so the conditioning is the UNet's.
        var (unet, conditioning) = (_model.ControlTarget!, (UNet.Conditioning)bound);
        int width = first.LatentW * VaeDecoder.Factor, height = first.LatentH * VaeDecoder.Factor;
        var prepared = units.Select(u => (LoadControlNet(u.ModelPath!), u, ControlImage.Prepare(u, width, height))).ToList();
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

    private void DisposeControlNets()
    {
        foreach (var entry in _controlNets.Values)
            if (entry.IsValueCreated) entry.Value.Dispose();
        _controlNets.Clear();
    }
}
