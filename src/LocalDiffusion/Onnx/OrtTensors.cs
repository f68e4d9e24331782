using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace LocalDiffusion.Onnx;

/// <summary>
/// Builds input tensors in whatever element type and rank a session declares, and reads outputs back as float:
/// the one place where exporters' differences in dtypes (float16/float32, int32/int64) are absorbed.
/// </summary>
internal static class OrtTensors
{
    /// <summary>A tensor of <paramref name="spec"/>'s element type holding <paramref name="values"/>.</summary>
    public static OrtValue FromFloats(TensorSpec spec, ReadOnlySpan<float> values, long[] shape)
    {
        var value = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, spec.ElementType, shape);
        try
        {
            switch (spec.ElementType)
            {
                case TensorElementType.Float:
                    values.CopyTo(value.GetTensorMutableDataAsSpan<float>());
                    break;
                case TensorElementType.Float16:
                    TensorPrimitives.ConvertToHalf(values, MemoryMarshal.Cast<Float16, Half>(value.GetTensorMutableDataAsSpan<Float16>()));
                    break;
                case TensorElementType.BFloat16:
                    BFloat16Conversion.FromSingle(values, MemoryMarshal.Cast<BFloat16, ushort>(value.GetTensorMutableDataAsSpan<BFloat16>()));
                    break;
                case TensorElementType.Double:
                    var doubles = value.GetTensorMutableDataAsSpan<double>();
                    for (var i = 0; i < values.Length; i++) doubles[i] = values[i];
                    break;
                case TensorElementType.Int64:
                    // Integer timesteps: diffusers' ONNX pipelines cast with numpy astype, which truncates.
                    var longs = value.GetTensorMutableDataAsSpan<long>();
                    for (var i = 0; i < values.Length; i++) longs[i] = (long)values[i];
                    break;
                case TensorElementType.Int32:
                    var ints = value.GetTensorMutableDataAsSpan<int>();
                    for (var i = 0; i < values.Length; i++) ints[i] = (int)values[i];
                    break;
                default:
                    throw new NotSupportedException($"input '{spec.Name}' has element type {spec.ElementType}, which no Stable Diffusion export uses");
            }
            return value;
        }
        catch
        {
            value.Dispose();
            throw;
        }
    }

    /// <summary>Whether <see cref="FromFloats"/> can fill an input of this element type.</summary>
    public static bool AcceptsFloats(TensorElementType type) => type is TensorElementType.Float or TensorElementType.Float16
        or TensorElementType.BFloat16 or TensorElementType.Double or TensorElementType.Int64 or TensorElementType.Int32;

    /// <summary>Checks that an output can be read by <see cref="ReadFloats"/>, at load rather than after the first run.</summary>
    /// <exception cref="ModelLoadException">The output is neither float32, float16 nor bfloat16.</exception>
    public static void RequireFloatOutput(TensorSpec spec, string modelPath)
    {
        if (spec.ElementType is not (TensorElementType.Float or TensorElementType.Float16 or TensorElementType.BFloat16))
            throw new ModelLoadException(modelPath, $"output '{spec.Name}' has element type {spec.ElementType}; float32, float16 or bfloat16 was expected.");
    }

    /// <summary>A tensor of token ids in the declared integer type.</summary>
    public static OrtValue FromIds(TensorSpec spec, ReadOnlySpan<int> ids, long[] shape)
    {
        switch (spec.ElementType)
        {
            case TensorElementType.Int32:
                var value = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, TensorElementType.Int32, shape);
                ids.CopyTo(value.GetTensorMutableDataAsSpan<int>());
                return value;
            case TensorElementType.Int64:
                var longValue = OrtValue.CreateAllocatedTensorValue(OrtAllocator.DefaultInstance, TensorElementType.Int64, shape);
                var longs = longValue.GetTensorMutableDataAsSpan<long>();
                for (var i = 0; i < ids.Length; i++) longs[i] = ids[i];
                return longValue;
            default:
                throw new NotSupportedException($"input '{spec.Name}' has element type {spec.ElementType}; token ids must be int32 or int64");
        }
    }

    /// <summary>Copies a float, float16 or bfloat16 output tensor into <paramref name="destination"/> as float.</summary>
    public static void ReadFloats(OrtValue value, Span<float> destination)
    {
        var info = value.GetTensorTypeAndShape();
        switch (info.ElementDataType)
        {
            case TensorElementType.Float:
                value.GetTensorDataAsSpan<float>().CopyTo(destination);
                break;
            case TensorElementType.Float16:
                TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<Float16, Half>(value.GetTensorDataAsSpan<Float16>()), destination);
                break;
            case TensorElementType.BFloat16:
                BFloat16Conversion.ToSingle(MemoryMarshal.Cast<BFloat16, ushort>(value.GetTensorDataAsSpan<BFloat16>()), destination);
                break;
            default:
                throw new NotSupportedException($"output of element type {info.ElementDataType}: float32, float16 or bfloat16 was expected");
        }
    }

    /// <summary>The shape of an output tensor.</summary>
    public static long[] Shape(OrtValue value) => value.GetTensorTypeAndShape().Shape;
}
