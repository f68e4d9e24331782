using System.Globalization;
using LocalDiffusion.Onnx;

namespace LocalDiffusion.Families;

/// <summary>
/// Refuses, before any session opens, a model whose weights cannot fit in this machine's memory on the CPU: FLUX.1's
/// transformer alone is 12B parameters (24 GB in bf16, 48 GB in fp32), and opening it on a 16 GB machine would page for
/// an hour instead of failing. Counted from the component folders' files (weights dominate them); with
/// <see cref="PipelineOptions.LowMemory"/> only the largest component must fit at a time.
/// </summary>
internal static class MemoryPreflight
{
    private static readonly AsyncLocal<long?> Override = new();

    /// <summary>Test seam: the memory this process may use, instead of the machine's, for the calling flow only.</summary>
    internal static long? MachineBytesOverride
    {
        get => Override.Value;
        set => Override.Value = value;
    }

    public static void Check(FamilyFolder folder, IEnumerable<string> components, bool lowMemory, ExecutionDevice device)
    {
        // On a GPU the weights live in device memory, which ONNX Runtime's providers manage and report themselves.
        if (device.Kind is not (ExecutionProviderKind.Cpu or ExecutionProviderKind.Auto)) return;
        var sizes = components.Select(c => (Name: c, Bytes: FolderBytes(Path.Combine(folder.Root, c)))).Where(c => c.Bytes > 0).ToList();
        if (sizes.Count == 0) return;
        var machine = MachineBytesOverride ?? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        var needed = lowMemory ? sizes.Max(s => s.Bytes) : sizes.Sum(s => s.Bytes);
        // Weights plus the runtime's working memory: refuse what cannot fit even before activations.
        if (needed <= machine * 0.9) return;
        var largest = sizes.MaxBy(s => s.Bytes);
        throw new LocalDiffusion.Errors.ResourceLimitException(folder.Root, "load",
            $"{folder.Root}: its weights need {Gb(needed)} of memory{(lowMemory ? $" (the largest component, {largest.Name}, at a time)" : $" ({string.Join(", ", sizes.Select(s => $"{s.Name} {Gb(s.Bytes)}"))})")}, " +
            $"but this machine has {Gb(machine)}: loading would page to disk for hours instead of generating. " +
            (lowMemory ? "Use int8 or fp16 weights, or a GPU with enough memory (FLUX.1 in bf16 needs 24 GB)." :
                "Try LowMemory (generate does it; serve --low-memory), int8 or fp16 weights, or a GPU with enough memory."));
    }

    private static long FolderBytes(string directory) =>
        Directory.Exists(directory) ? new DirectoryInfo(directory).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length) : 0;

    private static string Gb(long bytes) => (bytes / 1e9).ToString(bytes < 1e9 ? "0.###" : "0.#", CultureInfo.InvariantCulture) + " GB";
}
