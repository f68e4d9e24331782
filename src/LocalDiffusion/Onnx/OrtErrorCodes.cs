using System.Collections;
using System.Reflection;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Onnx;

/// <summary>
/// ONNX Runtime 1.32's .NET binding names native error codes 0–12 only: a failure with a newer code (21, for one, when the
/// optimised model cannot be written to a full disk) makes its exception's constructor throw a KeyNotFoundException that
/// loses the native message and escapes every handler for <see cref="OnnxRuntimeException"/>. Naming the missing codes
/// once, before any session opens, turns them back into OnnxRuntimeExceptions with their messages.
/// </summary>
internal static class OrtErrorCodes
{
    private const int HighestCode = 63;
    private static int _done;

    /// <summary>Adds a name for every code the binding lacks (idempotent; a binding without the table is left as it is).</summary>
    public static void Complete()
    {
        if (Interlocked.Exchange(ref _done, 1) == 1) return;
        var binding = typeof(OnnxRuntimeException);
        var codes = binding.Assembly.GetType("Microsoft.ML.OnnxRuntime.ErrorCode");
        if (codes is null || binding.GetField("errorCodeToString", BindingFlags.NonPublic | BindingFlags.Static)?.GetValue(null) is not IDictionary names)
            return;
        lock (names.SyncRoot)
            for (var code = 0; code <= HighestCode; code++)
            {
                var key = Enum.ToObject(codes, code);
                if (!names.Contains(key)) names[key] = $"ErrorCode{code}";
            }
    }
}
