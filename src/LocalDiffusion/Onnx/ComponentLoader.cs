using System.Runtime.ExceptionServices;

namespace LocalDiffusion.Onnx;

/// <summary>Opens a pipeline's components side by side: session creation (parsing, optimising, prepacking) is mostly single-threaded per model.</summary>
internal static class ComponentLoader
{
    /// <summary>
    /// Loads <paramref name="components"/> in parallel, adding each to <paramref name="opened"/> in order. While
    /// <c>auto</c> is still choosing a provider the first loads alone, so every component lands on the same one.
    /// When several fail, the first in order is reported (as a sequential load would) and the others are released.
    /// Where memory is short (the weights, twice over for the copies a load makes, exceed the memory the process may
    /// use: the machine's, or its container's limit), they load one after another, so two loads' peaks do not add up.
    /// </summary>
    public static OnnxComponent[] LoadAll(SessionFactory sessions, IReadOnlyList<(string Name, string Path)> components, List<OnnxComponent> opened)
    {
        var loaded = new OnnxComponent?[components.Count];
        var errors = new Exception?[components.Count];
        void Load(int i)
        {
            try
            {
                loaded[i] = OnnxComponent.Load(components[i].Name, components[i].Path, sessions);
            }
            catch (Exception e)
            {
                errors[i] = e;
            }
        }

        var first = 0;
        if (!sessions.IsSettled && components.Count > 0)
        {
            Load(0);
            first = 1;
        }
        if (errors[0] is null)
        {
            if (MemoryAllowsParallel(components))
                Parallel.For(first, components.Count, Load);
            else
                for (var i = first; i < components.Count && errors.All(e => e is null); i++) Load(i);
        }
        foreach (var component in loaded)
            if (component is not null) opened.Add(component);
        if (errors.FirstOrDefault(e => e is not null) is { } error)
            ExceptionDispatchInfo.Capture(error).Throw();
        return loaded!;
    }

    // The model files and their external data sit beside model.onnx; a load holds about twice their size for a while.
    private static bool MemoryAllowsParallel(IReadOnlyList<(string Name, string Path)> components)
    {
        long weights = 0;
        foreach (var (_, path) in components)
        {
            if (System.IO.Path.GetDirectoryName(path) is not { } folder || !Directory.Exists(folder)) continue;
            weights += Directory.EnumerateFiles(folder).Sum(f => new FileInfo(f).Length);
        }
        return 2 * weights < GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
    }
}
