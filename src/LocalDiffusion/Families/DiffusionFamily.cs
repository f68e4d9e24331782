using LocalDiffusion.Onnx;

namespace LocalDiffusion.Families;

/// <summary>
/// A model family as an adapter: it recognises its folders (decided once, at load) and opens one into a
/// <see cref="FamilyModel"/>, whose conditioner, denoiser, latent format and defaults the family-neutral orchestrator
/// (<c>LocalDiffusion.Pipeline</c>) drives. Adding a family is a class like this registered in <c>FamilyRegistry</c>:
/// neither the orchestrator nor any front-end changes.
/// </summary>
internal abstract class DiffusionFamily
{
    /// <summary>A short name ("SD 3", "FLUX.1").</summary>
    public abstract string Name { get; }

    /// <summary>Whether <paramref name="folder"/> is one of this family's (its pipeline class, its components).</summary>
    public abstract bool Claims(FamilyFolder folder);

    /// <summary>Opens the folder's components; what it opens goes into <paramref name="opened"/> so a failure can release it.</summary>
    /// <exception cref="ModelLoadException">A file is missing or not what the family needs; the message names it.</exception>
    public abstract FamilyModel Open(FamilyFolder folder, SessionFactory sessions, PipelineOptions options, List<OnnxComponent> opened);
}
