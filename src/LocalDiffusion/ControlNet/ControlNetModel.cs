using LocalDiffusion.Denoising;
using LocalDiffusion.Onnx;
using Microsoft.ML.OnnxRuntime;
using LocalDiffusion.Errors;

namespace LocalDiffusion.ControlNet;

/// <summary>
/// A ControlNet exported to ONNX: (sample [B,4,h,w], timestep, encoder_hidden_states [B,S,D], controlnet_cond [B,3,8h,8w]
/// RGB in [0, 1], optionally conditioning_scale) → the down-block residuals and the mid-block residual that a ControlNet
/// UNet adds to its skip connections (diffusers' ControlNetModel; names in <see cref="ControlResiduals"/>). Load one
/// with <see cref="Load(string, PipelineOptions?)"/> and hand it to any number of requests (<c>ControlNetUnit.Model</c>), or name its folder
/// (<see cref="ControlNetUnit.ModelPath"/>) and let the pipeline load and keep it. Thread-safe; dispose when done.
/// </summary>
public sealed class ControlNetModel : IDisposable
{
    private readonly OnnxComponent _model;

    private ControlNetModel(OnnxComponent model)
    {
        _model = model;
        var path = model.FilePath;
        string Expected() =>
            $"this does not look like a ControlNet: expected inputs sample [batch,4,h,w], timestep, encoder_hidden_states [batch,sequence,dim], controlnet_cond [batch,3,H,W]; found {model.DescribeInputs()}.";
        if (!model.Inputs.TryGetValue("sample", out var sample) || sample.Rank != 4
            || !model.Inputs.TryGetValue("timestep", out var timestep) || timestep.Rank > 1
            || !model.Inputs.TryGetValue("encoder_hidden_states", out var hidden) || hidden.Rank != 3
            || !model.Inputs.TryGetValue("controlnet_cond", out var cond) || cond.Rank != 4)
            throw new ModelLoadException(path, Expected());
        // SDXL ControlNets also take the UNet's text_embeds and time_ids; anything else is a kind this engine cannot feed.
        var extra = model.Inputs.Keys.Except(["sample", "timestep", "encoder_hidden_states", "controlnet_cond", "conditioning_scale", "text_embeds", "time_ids"]).ToList();
        if (extra.Count > 0)
            throw new ModelLoadException(path,
                $"it takes inputs {string.Join(", ", extra)} besides sample, timestep, encoder_hidden_states, controlnet_cond, conditioning_scale " +
                "(and SDXL's text_embeds, time_ids): a ControlNet kind LocalDiffusion cannot feed.");
        Added = [.. new[] { "text_embeds", "time_ids" }.Where(model.Inputs.ContainsKey).Select(n => model.Inputs[n])];
        foreach (var spec in Added)
            if (spec.Rank != 2 || !OrtTensors.AcceptsFloats(spec.ElementType))
                throw new ModelLoadException(path, $"input '{spec.Name}' is {spec.Describe()}; a float [batch, width] tensor was expected.");
        foreach (var spec in new[] { sample, timestep, hidden, cond })
            if (!OrtTensors.AcceptsFloats(spec.ElementType))
                throw new ModelLoadException(path, $"input '{spec.Name}' has element type {spec.ElementType}; float32/float16 was expected (timestep also int64/int32).");
        if (sample.FixedDimension(1) is { } channels && channels != UNet.LatentChannels)
            throw new ModelLoadException(path, $"its sample input has {channels} channels; ControlNets for Stable Diffusion take {UNet.LatentChannels}.");
        if (cond.FixedDimension(1) is { } condChannels && condChannels != 3)
            throw new ModelLoadException(path, $"its controlnet_cond input has {condChannels} channels; an RGB control image (3) was expected.");
        if (model.Inputs.TryGetValue("conditioning_scale", out var scale) && (scale.Rank > 1 || !OrtTensors.AcceptsFloats(scale.ElementType)))
            throw new ModelLoadException(path, $"input 'conditioning_scale' is {scale.Describe()}; a float scalar was expected.");
        Residuals = ControlResiduals.Ordered(model.Outputs.Values, path, "output");
        if (Residuals.Count == 0)
            throw new ModelLoadException(path, $"it has no residual outputs (down_block_N_additional_residual …, mid_block_additional_residual); found {model.DescribeOutputs()}.");
        Sample = sample;
        Timestep = timestep;
        Hidden = hidden;
        Cond = cond;
        Scale = scale;
    }

    /// <summary>The model.onnx path.</summary>
    public string FilePath => _model.FilePath;

    /// <summary>The width of encoder_hidden_states it declares (768 for SD 1.x, 1024 for SD 2.x, 2048 for SDXL), or null when symbolic.</summary>
    public int? CrossAttentionWidth => Hidden.FixedDimension(2) is { } d ? (int)d : null;

    /// <summary>Down-block residuals it returns (12 for SD 1.x/2.x, 9 for SDXL), besides the mid-block one.</summary>
    public int DownResidualCount => Residuals.Count - 1;

    internal IReadOnlyList<TensorSpec> Residuals { get; }

    internal TensorSpec Sample { get; }

    internal TensorSpec Timestep { get; }

    internal TensorSpec Hidden { get; }

    internal TensorSpec Cond { get; }

    internal TensorSpec? Scale { get; }

    /// <summary>SDXL's added conditioning inputs (text_embeds, time_ids) it declares; none for SD 1.x/2.x ControlNets.</summary>
    internal IReadOnlyList<TensorSpec> Added { get; }

    internal OnnxComponent Component => _model;

    /// <summary>
    /// Loads the ControlNet in <paramref name="path"/>: a folder holding <c>model.onnx</c> (diffusers' <c>controlnet/</c>
    /// layout) or the .onnx file itself, on the device <paramref name="options"/> name.
    /// </summary>
    /// <exception cref="ModelLoadException">The file is missing, corrupt or not a ControlNet.</exception>
    public static ControlNetModel Load(string path, PipelineOptions? options = null)
    {
        options ??= new PipelineOptions();
        var sessions = new SessionFactory(options.Validate(), options.IntraOpThreads, options.InterOpThreads)
        {
            Cache = options.UseModelCache ? new ModelCache(options.CacheDirectory ?? ModelCache.DefaultDirectory) : null,
            Options = options,
        };
        return Load(path, sessions);
    }

    internal static ControlNetModel Load(string path, SessionFactory sessions)
    {
        var file = ResolvePath(path);
        var component = OnnxComponent.Load("controlnet", file, sessions);
        try
        {
            return new ControlNetModel(component);
        }
        catch
        {
            component.Dispose();
            throw;
        }
    }

    /// <summary>The model.onnx of a ControlNet folder, or the file itself.</summary>
    /// <exception cref="ModelLoadException">Neither exists.</exception>
    internal static string ResolvePath(string path)
    {
        if (string.IsNullOrWhiteSpace(path))
            throw new InvalidRequestException(nameof(path), null, null, called => $"The ControlNet {called} is empty; give a folder holding model.onnx, or the .onnx file.");
        var full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            var inside = Path.Combine(full, "model.onnx");
            return File.Exists(inside) ? inside
                : throw new ModelLoadException(full, "this ControlNet folder has no model.onnx (diffusers' controlnet/ layout: model.onnx, config.json).");
        }
        return File.Exists(full) ? full : throw new ModelLoadException(full, "no such ControlNet folder or .onnx file.");
    }

    /// <summary>
    /// Refuses this ControlNet for <paramref name="unet"/> when they cannot work together: a UNet without residual inputs,
    /// another number of residuals, another cross-attention width or other residual channels (another model family).
    /// </summary>
    internal void CheckFits(UNet unet)
    {
        if (unet.ResidualInputs.Count == 0)
            throw new ModelIncompatibleException(nameof(GenerationRequest.ControlNets), FilePath, _ => $"The model's UNet ({unet.FilePath}) takes no ControlNet residuals (down_block_N_additional_residual, mid_block_additional_residual): " +
                "export the UNet with them (OnnxStack's converter with --controlnet, or tools/build_controlnet_test_model.py's wrapper) to use ControlNets.");
        if (CrossAttentionWidth is { } mine && unet.DeclaredHiddenSize is { } theirs && mine != theirs)
            throw new ModelIncompatibleException(nameof(GenerationRequest.ControlNets), FilePath, _ => $"ControlNet {FilePath} takes encoder_hidden_states {mine} wide, but the model's UNet ({unet.FilePath}) takes {theirs}: " +
                "the ControlNet was made for another model family (SD 1.x: 768, SD 2.x: 1024, SDXL: 2048).");
        // An SDXL ControlNet needs the UNet's added conditioning (and an SD one must not be given an SDXL UNet's).
        var unetAdded = unet.ExtraInputs.Where(e => e.Name is "text_embeds" or "time_ids").Select(e => e.Name).Order().ToList();
        var ours = Added.Select(a => a.Name).Order().ToList();
        if (!unetAdded.SequenceEqual(ours))
            throw new ModelIncompatibleException(nameof(GenerationRequest.ControlNets), FilePath, _ => $"ControlNet {FilePath} takes {(ours.Count == 0 ? "no added conditioning" : string.Join(" and ", ours))}, but the model's UNet ({unet.FilePath}) takes " +
                $"{(unetAdded.Count == 0 ? "none" : string.Join(" and ", unetAdded))}: the ControlNet was made for another model family (SDXL ControlNets take text_embeds and time_ids).");
        if (Residuals.Count != unet.ResidualInputs.Count)
            throw new ModelIncompatibleException(nameof(GenerationRequest.ControlNets), FilePath, _ => $"ControlNet {FilePath} returns {DownResidualCount} down-block residuals, but the model's UNet ({unet.FilePath}) takes {unet.ResidualInputs.Count - 1}: " +
                "the ControlNet was made for another model family.");
        for (var k = 0; k < Residuals.Count; k++)
            if (Residuals[k].FixedDimension(1) is { } c && unet.ResidualInputs[k].FixedDimension(1) is { } u && c != u)
                throw new ModelIncompatibleException(nameof(GenerationRequest.ControlNets), FilePath, _ => $"ControlNet {FilePath} gives '{Residuals[k].Name}' {c} channels, but the model's UNet ({unet.FilePath}) takes {u} in '{unet.ResidualInputs[k].Name}': " +
                    "the ControlNet was made for another model family.");
    }

    /// <inheritdoc/>
    public void Dispose() => _model.Dispose();
}
