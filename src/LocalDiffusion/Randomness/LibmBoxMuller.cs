namespace LocalDiffusion.Randomness;

/// <summary>
/// The float32 Box–Muller step of PyTorch's portable normal kernel (normal_fill_16 in
/// aten/src/ATen/native/cpu/DistributionTemplates.h), with the C library's logf, cosf and sinf.
/// </summary>
internal static class LibmBoxMuller
{
    private const int Half = CephesBoxMuller.BlockSize / 2;

    /// <summary>Turns every full block of 16 uniforms at the start of <paramref name="data"/> into normals.</summary>
    public static void Transform(Span<float> data)
    {
        for (var i = 0; i + CephesBoxMuller.BlockSize <= data.Length; i += CephesBoxMuller.BlockSize)
        {
            var block = data.Slice(i, CephesBoxMuller.BlockSize);
            for (var j = 0; j < Half; j++)
            {
                var radius = MathF.Sqrt(-2f * MathF.Log(1f - block[j]));
                // The angle is computed in double (2.0f * pi<double> * u2) and then stored as float.
                var theta = (float)(2.0 * Math.PI * block[j + Half]);
                // "· std + mean" with std = 1 and mean = 0: exact, except that −0 becomes +0.
                block[j] = radius * MathF.Cos(theta) + 0f;
                block[j + Half] = radius * MathF.Sin(theta) + 0f;
            }
        }
    }
}
