using System.Runtime.ExceptionServices;

namespace LocalDiffusion.Onnx;

/// <summary>Opens a pipeline's components side by side: session creation (parsing, optimising, prepacking) is mostly single-threaded per model.</summary>
internal static class ComponentLoader
{
    /// <summary>
    /// Loads <paramref name="components"/> in parallel, adding each to <paramref name="opened"/> in order. While
    /// <c>auto</c> is still choosing a provider the first loads alone, so every component lands on the same one.
    /// When several fail, the first in order is reported (as a sequential load would) and the others are released.
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
            Parallel.For(first, components.Count, Load);
        foreach (var component in loaded)
            if (component is not null) opened.Add(component);
        if (errors.FirstOrDefault(e => e is not null) is { } error)
            ExceptionDispatchInfo.Capture(error).Throw();
        return loaded!;
    }
}
