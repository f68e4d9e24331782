using System.Globalization;
using System.Text.RegularExpressions;
using LocalDiffusion.Onnx;

namespace LocalDiffusion.Denoising;

/// <summary>
/// The skip-connection residuals a ControlNet adds to a UNet, as ONNX tensors name them: OnnxStack's ControlNet
/// converter writes <c>down_block_{i}_additional_residual</c> and <c>mid_block_additional_residual</c> (outputs of the
/// ControlNet, inputs of its ControlNet UNet); other exporters spell them after diffusers' arguments
/// (<c>down_block_res_samples_{i}</c>, <c>down_block_additional_residuals.{i}</c>, <c>mid_block_res_sample</c>). Any name
/// that starts with <c>down_block</c> and carries one number is down residual number i; a name that starts with
/// <c>mid_block</c> is the mid-block residual. Slot order: down 0..n−1, then mid.
/// </summary>
internal static partial class ControlResiduals
{
    [GeneratedRegex(@"^down_block\D*(\d+)\D*$")]
    private static partial Regex DownName();

    /// <summary>The residual slot a tensor name stands for: its down index, −1 for the mid block, or null for another tensor.</summary>
    public static int? Slot(string name)
    {
        if (name.StartsWith("mid_block", StringComparison.Ordinal)) return -1;
        var m = DownName().Match(name);
        return m.Success ? int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : null;
    }

    /// <summary>
    /// The residual tensors among <paramref name="specs"/> in slot order (down 0..n−1, mid), or an empty list when there
    /// are none; a set with a gap, a duplicate index or no mid residual is refused naming <paramref name="path"/>.
    /// </summary>
    public static IReadOnlyList<TensorSpec> Ordered(IEnumerable<TensorSpec> specs, string path, string what)
    {
        var down = new SortedDictionary<int, TensorSpec>();
        TensorSpec? mid = null;
        foreach (var spec in specs)
        {
            switch (Slot(spec.Name))
            {
                case null:
                    continue;
                case -1 when mid is null:
                    mid = spec;
                    break;
                case -1:
                    throw new ModelLoadException(path, $"it has two mid-block residual {what}s ({mid.Name}, {spec.Name}).");
                case int i when !down.TryAdd(i, spec):
                    throw new ModelLoadException(path, $"it has two {what}s for down residual {i} ({down[i].Name}, {spec.Name}).");
            }
            if (spec.Rank != 4 || !OrtTensors.AcceptsFloats(spec.ElementType))
                throw new ModelLoadException(path, $"residual {what} '{spec.Name}' is {spec.Describe()}; a float [batch, channels, height, width] tensor was expected.");
        }
        if (down.Count == 0 && mid is null) return [];
        if (mid is null)
            throw new ModelLoadException(path, $"it has down-block residual {what}s ({string.Join(", ", down.Values.Select(s => s.Name))}) but no mid_block_additional_residual.");
        var expected = 0;
        foreach (var i in down.Keys)
            if (i != expected++)
                throw new ModelLoadException(path, $"its down-block residual {what}s are numbered {string.Join(", ", down.Keys)}; 0 to {down.Count - 1} were expected.");
        return [.. down.Values, mid];
    }

    /// <summary>
    /// How many times each residual is halved relative to the latents, for a diffusers UNet with <paramref name="levels"/>
    /// resolution levels (stride-2 convolutions + 1) and <paramref name="count"/> down residuals: conv_in's output first
    /// (full size), then per level its resnets' outputs and, except on the last level, the downsampler's (halved once
    /// more); the mid block is at the last level. SD 1.x: 12 down residuals over 4 levels. Null when the count does not
    /// fit that layout.
    /// </summary>
    public static int[]? Halvings(int count, int levels)
    {
        if (levels < 1 || (count - levels) % levels != 0 || count <= levels) return null;
        var perLevel = (count - levels) / levels; // resnets per level
        var halvings = new int[count + 1];
        var slot = 1;
        for (var level = 0; level < levels; level++)
        {
            for (var r = 0; r < perLevel; r++) halvings[slot++] = level;
            if (level < levels - 1) halvings[slot++] = level + 1;
        }
        halvings[count] = levels - 1;
        return halvings;
    }

    /// <summary>A side after <paramref name="times"/> stride-2, padding-1, 3×3 convolutions.</summary>
    public static int Halve(int side, int times)
    {
        for (var i = 0; i < times; i++) side = (side + 1) / 2;
        return side;
    }
}
