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
        if (!Fits(dims, block)) throw new ArgumentException($"a [{string.Join(", ", dims.ToArray())}] filter does not split into blocks of {block}", nameof(dims));
        var outChannels = (int)dims[0];
        var inChannels = (int)dims[1];
        var kernel = (int)(dims[2] * dims[3]);
        if (plain.Length != outChannels * inChannels * kernel || blocked.Length != plain.Length)
            throw new ArgumentException($"the filter holds {plain.Length} values and the blocked buffer {blocked.Length}, not the {outChannels * inChannels * kernel} of [{string.Join(", ", dims.ToArray())}]");
        // One output channel's plain values for a given input channel and kernel tap are inChannels·kernel apart.
        var outStride = inChannels * kernel;
        var next = 0;
        for (var ob = 0; ob < outChannels / block; ob++)
            for (var ib = 0; ib < inChannels / block; ib++)
                for (var k = 0; k < kernel; k++)
                    for (var bi = 0; bi < block; bi++)
                    {
                        var source = (ob * block * inChannels + ib * block + bi) * kernel + k;
                        for (var bo = 0; bo < block; bo++, source += outStride) blocked[next++] = plain[source];
                    }
    }
}
