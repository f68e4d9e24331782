using System.Globalization;
using System.Text.RegularExpressions;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Adapters;

/// <summary>
/// AUTOMATIC1111's LoRA prompt syntax: <c>&lt;lora:NAME&gt;</c> or <c>&lt;lora:NAME:WEIGHT&gt;</c> anywhere in the prompt
/// (A1111 also accepts <c>lyco</c> for LyCORIS files). The tags are taken out of the text before it is encoded; NAME is a
/// file name in the LoRA folder, without <c>.safetensors</c>.
/// </summary>
public static partial class PromptLoras
{
    [GeneratedRegex(@"<(lora|lyco):([^:<>]+)(?::([^:<>]*))?(?::[^<>]*)?>", RegexOptions.CultureInvariant)]
    private static partial Regex Tag();

    /// <summary>The prompt without its LoRA tags, and the tags' names and weights in order (weight 1 when left out).</summary>
    public static (string Prompt, IReadOnlyList<(string Name, float Weight)> Loras) Extract(string prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        var found = new List<(string, float)>();
        var stripped = Tag().Replace(prompt, m =>
        {
            var name = m.Groups[2].Value.Trim();
            var weightText = m.Groups[3].Success ? m.Groups[3].Value.Trim() : "";
            var weight = 1f;
            if (weightText.Length > 0 && !float.TryParse(weightText, NumberStyles.Float, CultureInfo.InvariantCulture, out weight))
                throw new InvalidRequestException(nameof(prompt), null, null, called => $"the {called}'s {m.Value} has weight \"{weightText}\", not a number");
            found.Add((name, weight));
            return "";
        });
        return (found.Count == 0 ? prompt : stripped, found);
    }

    /// <summary>
    /// The file for <paramref name="name"/> in <paramref name="directory"/>: NAME.safetensors (searched in subfolders too,
    /// as A1111 lists them), or an <see cref="ArgumentException"/> saying which names the folder has.
    /// </summary>
    public static string Resolve(string name, string? directory)
    {
        if (directory is null)
            throw new InvalidRequestException("Prompt", name, "a LoRA folder", _ => $"the prompt asks for <lora:{name}>, but no LoRA folder is set (PipelineOptions.LoraDirectory, --lora-dir)");
        if (!Directory.Exists(directory)) throw new InvalidRequestException("LoraDirectory", directory, "an existing folder", _ => $"the LoRA folder {directory} does not exist");
        var matches = LoraDirectory.Find(directory, name);
        if (matches.Count == 1) return matches[0];
        if (matches.Count > 1) throw new InvalidRequestException("Prompt", name, "one file", _ => $"<lora:{name}> matches {matches.Count} files in {directory}: {string.Join(", ", matches)}");
        var known = LoraDirectory.List(directory).Select(f => LoraDirectory.NameOf(directory, f)).Take(20).ToList();
        throw new InvalidRequestException("Prompt", name, "a LoRA in the folder", _ => $"the prompt asks for <lora:{name}>, but {directory} has no {name}.safetensors" +
            (known.Count == 0 ? " (it holds no .safetensors files)" : $" (it has: {string.Join(", ", known)})"));
    }
}
