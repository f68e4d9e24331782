namespace LocalDiffusion.Adapters;

/// <summary>
/// ONNX Runtime's blocked Conv filter layout for its NCHWc kernels (the "all"-level optimiser's <c>reorder_token_N</c>
/// initializers): a torch-layout weight <c>[O, I, kh, kw]</c> stored as <c>[O/B, I/B, kh, kw, B (in), B (out)]</c>
/// (OIHWBiBo), where B is the CPU's NCHWc block — 16 with AVX-512, 8 with AVX2. The stored tensor keeps the dimensions
/// <c>[O, I, kh, kw]</c>; only the order of the values changes. This is the one place the engine knows that order: it is
/// never assumed, only confirmed against a cached graph's own data (<see cref="CachedConvWeights"/>).
/// </summary>
internal static class NchwcFilterLayout
{
    /// <summary>The block sizes ONNX Runtime's CPU provider uses (its MLAS NCHWc block: AVX-512 16, AVX2 8).</summary>
    public static ReadOnlySpan<int> Blocks => [16, 8];

    /// <summary>Whether a filter of <paramref name="dims"/> <c>[O, I, kh, kw]</c> splits into whole <paramref name="block"/>s.</summary>
    public static bool Fits(ReadOnlySpan<long> dims, int block) =>
        dims.Length == 4 && dims[0] > 0 && dims[1] > 0 && dims[0] % block == 0 && dims[1] % block == 0;

    /// <summary>
    /// Writes <paramref name="plain"/> (<c>[O, I, kh, kw]</c> as <paramref name="dims"/> says) into <paramref name="blocked"/>
    /// in OIHWBiBo order: <c>blocked[ob, ib, y, x, bi, bo] = plain[ob·B + bo, ib·B + bi, y, x]</c>.
    /// </summary>
    public static void ToBlocked(ReadOnlySpan<float> plain, Span<float> blocked, ReadOnlySpan<long> dims, int block)
    {
        var (outBlocks, inBlocks, inChannels, kernel) = Check(plain, blocked.Length, dims, block);
        var tile = kernel * block * block;
        for (var ob = 0; ob < outBlocks; ob++)
            for (var ib = 0; ib < inBlocks; ib++)
                Tile(plain, blocked.Slice((ob * inBlocks + ib) * tile, tile), ob, ib, inChannels, kernel, block);
    }

    /// <summary>
    /// Whether <paramref name="stored"/> is <paramref name="plain"/> in OIHWBiBo order with <paramref name="block"/>, bit for
    /// bit; it stops at the first block that differs (the usual answer for a block size that is not the one used).
    /// </summary>
    public static bool IsBlocked(ReadOnlySpan<float> plain, ReadOnlySpan<float> stored, ReadOnlySpan<long> dims, int block)
    {
        var (outBlocks, inBlocks, inChannels, kernel) = Check(plain, stored.Length, dims, block);
        var tile = kernel * block * block;
        var buffer = new float[tile];
        for (var ob = 0; ob < outBlocks; ob++)
            for (var ib = 0; ib < inBlocks; ib++)
            {
                Tile(plain, buffer, ob, ib, inChannels, kernel, block);
                var expected = System.Runtime.InteropServices.MemoryMarshal.AsBytes(stored.Slice((ob * inBlocks + ib) * tile, tile));
                if (!System.Runtime.InteropServices.MemoryMarshal.AsBytes((ReadOnlySpan<float>)buffer).SequenceEqual(expected)) return false;
            }
        return true;
    }

    private static (int OutBlocks, int InBlocks, int InChannels, int Kernel) Check(ReadOnlySpan<float> plain, int otherLength, ReadOnlySpan<long> dims, int block)
    {
        if (!Fits(dims, block)) throw new ArgumentException($"a [{string.Join(", ", dims.ToArray())}] filter does not split into blocks of {block}", nameof(dims));
        var count = dims[0] * dims[1] * dims[2] * dims[3];
        if (plain.Length != count || otherLength != count)
            throw new ArgumentException($"the filter holds {plain.Length} values and the blocked one {otherLength}, not the {count} of [{string.Join(", ", dims.ToArray())}]");
        return ((int)dims[0] / block, (int)dims[1] / block, (int)dims[1], (int)(dims[2] * dims[3]));
    }

    // Block (ob, ib) of the blocked layout — its kernel·B·B values, contiguous there — from the plain filter. The one
    // place the order is written: for each kernel tap and input channel of the block, the block's output channels, whose
    // plain values are inChannels·kernel apart.
    private static void Tile(ReadOnlySpan<float> plain, Span<float> tile, int ob, int ib, int inChannels, int kernel, int block)
    {
        var outStride = inChannels * kernel;
        var next = 0;
        for (var k = 0; k < kernel; k++)
            for (var bi = 0; bi < block; bi++)
            {
                var source = (ob * block * inChannels + ib * block + bi) * kernel + k;
                for (var bo = 0; bo < block; bo++, source += outStride) tile[next++] = plain[source];
            }
    }
}
