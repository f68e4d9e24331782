using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Onnx;

/// <summary>Applies <see cref="PipelineOptions"/>' memory and threading knobs to ONNX Runtime session options.</summary>
internal static class SessionTuning
{
    private const int SameAsRequested = 1; // onnxruntime::ArenaExtendStrategy::kSameAsRequested
    private const string DisablePrepacking = "session.disable_prepacking";
    private static readonly Lock Gate = new();
    private static bool _sharedArenaRegistered;

    /// <summary>Sets the arena, memory-pattern and configuration entries <paramref name="tuning"/> asks for.</summary>
    public static void Apply(SessionOptions options, PipelineOptions tuning, ExecutionDevice device)
    {
        // Only the CPU provider pre-packs; an explicit SessionConfig entry decides instead.
        if (!tuning.PrepackWeights && device.Kind == ExecutionProviderKind.Cpu
            && tuning.SessionConfig?.ContainsKey(DisablePrepacking) != true)
            options.AddSessionConfigEntry(DisablePrepacking, "1");
        if (tuning.EnableCpuMemArena is { } arena) options.EnableCpuMemArena = arena;
        if ((tuning.EnableMemoryPattern ?? device.Kind != ExecutionProviderKind.Cpu) is false) options.EnableMemoryPattern = false;
        else if (tuning.EnableMemoryPattern is true) options.EnableMemoryPattern = true;
        if (tuning.CpuArenaExtendStrategy == "same_as_requested")
        {
            RegisterSharedArena();
            options.AddSessionConfigEntry("session.use_env_allocators", "1");
        }
        if (tuning.SessionConfig is { } entries)
        {
            foreach (var (key, value) in entries)
                options.AddSessionConfigEntry(key, value);
        }
    }

    // The arena extension strategy of the CPU provider can only be chosen for an allocator registered with the
    // environment (process-wide, once); sessions opt in to it with session.use_env_allocators.
    private static void RegisterSharedArena()
    {
        lock (Gate)
        {
            if (_sharedArenaRegistered) return;
            using var info = new OrtMemoryInfo(OrtMemoryInfo.allocatorCPU, OrtAllocatorType.ArenaAllocator, 0, OrtMemType.Default);
            using var config = new OrtArenaCfg(0, SameAsRequested, -1, -1);
            OrtEnv.Instance().CreateAndRegisterAllocator(info, config);
            _sharedArenaRegistered = true;
        }
    }
}
