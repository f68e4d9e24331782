using System.Numerics;

namespace LocalDiffusion.Randomness;

/// <summary>
/// The 32-bit Mersenne Twister (MT19937) with the standard initialisation, as PyTorch's CPU generator
/// (at::mt19937) and std::mt19937 run it. Not thread-safe.
/// </summary>
internal sealed class Mt19937
{
    private const int StateSize = 624;
    private const int ShiftSize = 397;
    private const uint MatrixA = 0x9908B0DF;
    private const uint UpperMask = 0x80000000;
    private const uint LowerMask = 0x7FFFFFFF;

    private readonly uint[] _state = new uint[StateSize];
    private int _next;

    /// <summary>Seeds the engine with the standard MT19937 initialisation (Knuth's multiplier 1812433253).</summary>
    public Mt19937(uint seed)
    {
        _state[0] = seed;
        for (var i = 1; i < StateSize; i++)
            _state[i] = 1812433253u * (_state[i - 1] ^ (_state[i - 1] >> 30)) + (uint)i;
        _next = StateSize;
    }

    /// <summary>The next tempered 32-bit output.</summary>
    public uint NextUInt32()
    {
        if (_next >= StateSize)
            Twist();
        return Temper(_state[_next++]);
    }

    /// <summary>The next <c>destination.Length</c> outputs, the same as as many <see cref="NextUInt32"/> calls.</summary>
    public void Fill(Span<uint> destination)
    {
        while (!destination.IsEmpty)
        {
            if (_next >= StateSize)
                Twist();
            var count = Math.Min(StateSize - _next, destination.Length);
            Temper(_state.AsSpan(_next, count), destination[..count]);
            _next += count;
            destination = destination[count..];
        }
    }

    private static void Temper(ReadOnlySpan<uint> state, Span<uint> output)
    {
        var i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            for (; i + Vector<uint>.Count <= state.Length; i += Vector<uint>.Count)
            {
                var y = new Vector<uint>(state[i..]);
                y ^= Vector.ShiftRightLogical(y, 11);
                y ^= Vector.ShiftLeft(y, 7) & new Vector<uint>(0x9D2C5680);
                y ^= Vector.ShiftLeft(y, 15) & new Vector<uint>(0xEFC60000);
                y ^= Vector.ShiftRightLogical(y, 18);
                y.CopyTo(output[i..]);
            }
        }
        for (; i < state.Length; i++)
            output[i] = Temper(state[i]);
    }

    private static uint Temper(uint y)
    {
        y ^= y >> 11;
        y ^= (y << 7) & 0x9D2C5680;
        y ^= (y << 15) & 0xEFC60000;
        return y ^ (y >> 18);
    }

    /// <summary>Regenerates the whole state block at once (cheaper than twisting one word per draw).</summary>
    private void Twist()
    {
        var s = _state;
        var i = 0;
        for (; i < StateSize - ShiftSize; i++)
            s[i] = s[i + ShiftSize] ^ Mix(s[i], s[i + 1]);
        for (; i < StateSize - 1; i++)
            s[i] = s[i + ShiftSize - StateSize] ^ Mix(s[i], s[i + 1]);
        s[StateSize - 1] = s[ShiftSize - 1] ^ Mix(s[StateSize - 1], s[0]);
        _next = 0;
    }

    private static uint Mix(uint current, uint following)
    {
        var y = (current & UpperMask) | (following & LowerMask);
        return (y >> 1) ^ ((y & 1) * MatrixA);
    }
}
