using System.Text.Json;
using LocalDiffusion.Onnx;

namespace LocalDiffusion.Families;

/// <summary>
/// A model folder as a family adapter reads it: the pipeline class model_index.json names, which components it lists,
/// and each component's model.onnx and config.json. Every missing file is an error naming it.
/// </summary>
internal sealed class FamilyFolder
{
    private readonly HashSet<string> _listed;

    private FamilyFolder(string root, string? pipelineClass, HashSet<string> listed)
    {
        Root = root;
        PipelineClass = pipelineClass;
        _listed = listed;
    }

    /// <summary>The folder.</summary>
    public string Root { get; }

    /// <summary>model_index.json's <c>_class_name</c>, or null.</summary>
    public string? PipelineClass { get; }

    /// <summary>model_index.json path, for messages.</summary>
    public string IndexPath => Path.Combine(Root, "model_index.json");

    /// <summary>Reads model_index.json (when there is one) of <paramref name="root"/>.</summary>
    public static FamilyFolder Open(string root)
    {
        var full = Path.GetFullPath(root);
        var index = Path.Combine(full, "model_index.json");
        string? cls = null;
        var listed = new HashSet<string>(StringComparer.Ordinal);
        if (File.Exists(index))
        {
            try
            {
                using var json = JsonDocument.Parse(File.ReadAllBytes(index));
                foreach (var p in json.RootElement.EnumerateObject())
                {
                    if (p.Name == "_class_name" && p.Value.ValueKind == JsonValueKind.String) cls = p.Value.GetString();
                    // diffusers lists a component the pipeline does without as [null, null].
                    else if (p.Value.ValueKind == JsonValueKind.Array && p.Value.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.Null)) listed.Add(p.Name);
                }
            }
            catch (JsonException e)
            {
                throw new ModelLoadException(index, $"invalid JSON ({e.Message}).", e);
            }
        }
        return new FamilyFolder(full, cls, listed);
    }

    /// <summary>Whether model_index.json lists <paramref name="component"/>, or its folder exists.</summary>
    public bool Has(string component) => _listed.Contains(component) || System.IO.Directory.Exists(Path.Combine(Root, component));

    /// <summary><paramref name="component"/>/model.onnx, which must exist.</summary>
    public string Model(string component, string what)
    {
        var path = Path.Combine(Root, component, "model.onnx");
        return File.Exists(path) ? path : throw new ModelLoadException(path, $"file not found: {what} was expected here.");
    }

    /// <summary>
    /// Refuses a folder whose model_index.json names <paramref name="what"/> (e.g. "a Stable Diffusion 3 pipeline") but that
    /// lacks <paramref name="component"/>/model.onnx: the index is what is wrong (or the folder was mislabelled), so it is named.
    /// </summary>
    public void RequireLayout(string component, string what)
    {
        if (OptionalModel(component) is null)
            throw new ModelLoadException(IndexPath,
                $"pipeline class '{PipelineClass}' is {what}, but the folder has no {component}/model.onnx{(Has("unet") ? " (it has unet/, a UNet model's layout)" : "")}.");
    }

    /// <summary><paramref name="component"/>/model.onnx when it exists, else null.</summary>
    public string? OptionalModel(string component)
    {
        var path = Path.Combine(Root, component, "model.onnx");
        return File.Exists(path) ? path : null;
    }

    /// <summary>A folder of the model, which must exist (a tokenizer).</summary>
    public string Directory(string component, string what)
    {
        var path = Path.Combine(Root, component);
        return System.IO.Directory.Exists(path) ? path : throw new ModelLoadException(path, $"folder not found: {what} was expected here.");
    }

    /// <summary><paramref name="component"/>/<paramref name="file"/> parsed, or null when absent.</summary>
    public JsonDocument? Config(string component, string file = "config.json")
    {
        var path = Path.Combine(Root, component, file);
        if (!File.Exists(path)) return null;
        try
        {
            return JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw new ModelLoadException(path, $"invalid JSON ({e.Message}).", e);
        }
    }

    /// <summary>A number from <paramref name="component"/>'s config.json, or <paramref name="fallback"/>.</summary>
    public double Number(string component, string key, double fallback)
    {
        using var config = Config(component);
        if (config is null || !config.RootElement.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return fallback;
        return v.ValueKind == JsonValueKind.Number && double.IsFinite(v.GetDouble()) ? v.GetDouble()
            : throw new ModelLoadException(Path.Combine(Root, component, "config.json"), $"\"{key}\" is {v.GetRawText()}; a number was expected.");
    }

    /// <summary>A boolean from <paramref name="component"/>'s config.json, or <paramref name="fallback"/>.</summary>
    public bool Flag(string component, string key, bool fallback)
    {
        using var config = Config(component);
        if (config is null || !config.RootElement.TryGetProperty(key, out var v)) return fallback;
        return v.ValueKind switch { JsonValueKind.True => true, JsonValueKind.False => false, _ => fallback };
    }
}
