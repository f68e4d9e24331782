namespace LocalDiffusion.Model;

/// <summary>
/// A model folder's <c>localdiffusion.json</c>: what its model card recommends, for exports that do not say it in
/// diffusers' own files. Every field is optional.
/// </summary>
/// <param name="Distillation">"turbo" (SD-Turbo, SDXL-Turbo), "lcm" or "none"; null: detect.</param>
/// <param name="Steps">Default step count.</param>
/// <param name="GuidanceScale">Default guidance scale.</param>
public sealed record FolderDefaults(string? Distillation, int? Steps, float? GuidanceScale)
{
    /// <summary>The file name, in the model folder's root.</summary>
    public const string FileName = "localdiffusion.json";
}
