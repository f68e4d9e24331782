using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using LocalDiffusion.Tensors;

namespace LocalDiffusion.Onnx;

/// <summary>
/// A tensor in the element type a session declares, over a managed array that ONNX Runtime reads or writes in
/// place (the array is pinned while the <see cref="OrtValue"/> lives). Created once per generation and bound to
/// the session, so a step writes its floats into it and reads them back without allocating.
/// </summary>
internal sealed class HostTensor : IDisposable
{
    private readonly Array _buffer;

    private HostTensor(TensorElementType type, Array buffer, OrtValue value)
    {
        ElementType = type;
        _buffer = buffer;
        Value = value;
    }

    /// <summary>The element type (float, float16, double, int64 or int32).</summary>
    public TensorElementType ElementType { get; }

    /// <summary>The tensor to bind or pass to a run.</summary>
    public OrtValue Value { get; }

    /// <summary>Elements in the tensor.</summary>
    public int Length => _buffer.Length;

    /// <summary>Changes at every write: a <see cref="StepBinding"/> binds the tensor again when it differs from its bind's.</summary>
    public int Version { get; private set; }

    /// <summary>A zeroed tensor of <paramref name="type"/> and <paramref name="shape"/>; <paramref name="name"/> is for the error.</summary>
    /// <exception cref="NotSupportedException">An element type no Stable Diffusion export uses.</exception>
    public static HostTensor Create(TensorElementType type, long[] shape, string name)
    {
        var count = TensorShape.ArrayLength(shape);
        return type switch
        {
            TensorElementType.Float => Wrap(type, new float[count], shape),
            TensorElementType.Float16 => Wrap(type, new Float16[count], shape),
            TensorElementType.Double => Wrap(type, new double[count], shape),
            TensorElementType.Int64 => Wrap(type, new long[count], shape),
            TensorElementType.Int32 => Wrap(type, new int[count], shape),
            _ => throw new NotSupportedException($"'{name}' has element type {type}, which no Stable Diffusion export uses"),
        };
    }

    private static HostTensor Wrap<T>(TensorElementType type, T[] buffer, long[] shape) where T : unmanaged =>
        new(type, buffer, OrtValue.CreateTensorValueFromMemory(buffer, shape));

    /// <summary>Writes <paramref name="values"/> from element <paramref name="offset"/>, converting as <see cref="OrtTensors.FromFloats"/> does.</summary>
    public void Write(ReadOnlySpan<float> values, int offset = 0)
    {
        Version++;
        switch (_buffer)
        {
            case float[] floats:
                values.CopyTo(floats.AsSpan(offset));
                break;
            case Float16[] halves:
                TensorPrimitives.ConvertToHalf(values, MemoryMarshal.Cast<Float16, Half>(halves.AsSpan(offset, values.Length)));
                break;
            case double[] doubles:
                for (var i = 0; i < values.Length; i++) doubles[offset + i] = values[i];
                break;
            case long[] longs:
                // Integer timesteps: diffusers' ONNX pipelines cast with numpy astype, which truncates.
                for (var i = 0; i < values.Length; i++) longs[offset + i] = (long)values[i];
                break;
            case int[] ints:
                for (var i = 0; i < values.Length; i++) ints[offset + i] = (int)values[i];
                break;
        }
    }

    /// <summary>Fills the whole tensor with <paramref name="value"/>.</summary>
    public void Fill(float value)
    {
        Span<float> one = [value];
        for (var i = 0; i < Length; i++) Write(one, i);
    }

    /// <summary>Reads <paramref name="destination"/>.Length elements from element <paramref name="offset"/> as float (float and float16 tensors).</summary>
    public void Read(int offset, Span<float> destination)
    {
        switch (_buffer)
        {
            case float[] floats:
                floats.AsSpan(offset, destination.Length).CopyTo(destination);
                break;
            case Float16[] halves:
                TensorPrimitives.ConvertToSingle(MemoryMarshal.Cast<Float16, Half>(halves.AsSpan(offset, destination.Length)), destination);
                break;
            default:
                throw new NotSupportedException($"output of element type {ElementType}: float32 or float16 was expected");
        }
    }

    /// <inheritdoc/>
    public void Dispose() => Value.Dispose();
}
