using LocalDiffusion.Families;
using LocalDiffusion.Families.Flux;
using LocalDiffusion.Families.StableDiffusion;
using LocalDiffusion.Families.StableDiffusion3;

namespace LocalDiffusion.Pipeline;

/// <summary>
/// The families that claim model folders, asked in turn: those registered (newest first), SD 3, FLUX.1, and last the UNet
/// family (SD 1.x/2.x/XL and their variants), which claims whatever is left and refuses, naming the file, what is no model.
/// A family registered here is loaded by <see cref="StableDiffusionPipeline.Load"/> and served by every front-end without
/// further changes.
/// </summary>
internal static class FamilyRegistry
{
    private static readonly List<DiffusionFamily> Families = [new Sd3Family(), new FluxFamily(), new StableDiffusionFamily()];
    private static readonly Lock Gate = new();

    /// <summary>Adds a family (the "adding a family" walkthrough); the newest is asked first.</summary>
    public static void Register(DiffusionFamily family)
    {
        ArgumentNullException.ThrowIfNull(family);
        lock (Gate) Families.Insert(0, family);
    }

    /// <summary>Removes a family registered with <see cref="Register"/>.</summary>
    public static void Unregister(DiffusionFamily family)
    {
        lock (Gate) Families.Remove(family);
    }

    /// <summary>
    /// Whether <paramref name="folder"/> holds a model: a model_index.json, or a layout without one that a family other
    /// than the catch-all UNet family recognises (Black Forest Labs' FLUX.1 release).
    /// </summary>
    public static bool HoldsModel(FamilyFolder folder)
    {
        if (File.Exists(folder.IndexPath)) return true;
        lock (Gate) return Families.Take(Families.Count - 1).Any(f => f.Claims(folder));
    }

    /// <summary>The family that claims <paramref name="folder"/> (the UNet family claims every folder the others leave).</summary>
    public static DiffusionFamily Claim(FamilyFolder folder)
    {
        lock (Gate) return Families.First(f => f.Claims(folder));
    }
}
