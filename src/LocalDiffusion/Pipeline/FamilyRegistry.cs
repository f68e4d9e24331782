using LocalDiffusion.Families;
using LocalDiffusion.Families.Flux;
using LocalDiffusion.Families.StableDiffusion3;

namespace LocalDiffusion.Pipeline;

/// <summary>
/// The families that claim model folders before the Stable Diffusion 1.x/2.x/XL loader looks at them. A family registered
/// here is loaded by <c>StableDiffusionPipeline.Load</c> and served by every front-end without further changes.
/// </summary>
internal static class FamilyRegistry
{
    private static readonly List<DiffusionFamily> Families = [new Sd3Family(), new FluxFamily()];
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

    /// <summary>The family that claims <paramref name="folder"/>, or null (then it is an SD 1.x/2.x/XL folder or unsupported).</summary>
    public static DiffusionFamily? Claim(FamilyFolder folder)
    {
        lock (Gate) return Families.FirstOrDefault(f => f.Claims(folder));
    }
}
