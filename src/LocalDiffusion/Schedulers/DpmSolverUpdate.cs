namespace LocalDiffusion.Schedulers;

/// <summary>
/// One DPM-Solver update from σᵢ to σᵢ₊₁ (Lu et al. 2022; the SDE forms from DPM-Solver++ §5), in float32 with the
/// scalar coefficients built exactly as diffusers builds them, so results match to the last bits.
/// </summary>
internal readonly ref struct DpmSolverUpdate
{
    private readonly DpmSolverAlgorithmType _algorithm;
    private readonly DpmSolverType _solverType;
    private readonly IReadOnlyList<float> _sigmas;
    private readonly int _step;

    public DpmSolverUpdate(DpmSolverAlgorithmType algorithm, DpmSolverType solverType, IReadOnlyList<float> sigmas, int step)
    {
        _algorithm = algorithm;
        _solverType = solverType;
        _sigmas = sigmas;
        _step = step;
    }

    /// <summary>α_t = 1/√(σ² + 1) and σ_t = σ·α_t of a k-diffusion sigma.</summary>
    public static (float Alpha, float Sigma) AlphaSigma(float sigma)
    {
        var alpha = 1f / MathF.Sqrt(sigma * sigma + 1);
        return (alpha, sigma * alpha);
    }

    /// <summary>λ = ln α_t − ln σ_t, the log signal-to-noise ratio the solvers step in.</summary>
    public static float Lambda(float alpha, float sigma) => MathF.Log(alpha) - MathF.Log(sigma);

    /// <summary>DPM-Solver-1 (DDIM-like): x_t from the newest converted output m.</summary>
    public void FirstOrder(float[] m, Span<float> sample, ReadOnlySpan<float> noise)
    {
        var (alphaT, sigmaT) = AlphaSigma(_sigmas[_step + 1]);
        var (alphaS, sigmaS) = AlphaSigma(_sigmas[_step]);
        var h = Lambda(alphaT, sigmaT) - Lambda(alphaS, sigmaS);
        switch (_algorithm)
        {
            case DpmSolverAlgorithmType.DpmSolverPlusPlus:
            {
                float a = sigmaT / sigmaS, b = alphaT * (MathF.Exp(-h) - 1f);
                for (var k = 0; k < sample.Length; k++)
                    sample[k] = a * sample[k] - b * m[k];
                break;
            }
            case DpmSolverAlgorithmType.DpmSolver:
            {
                float a = alphaT / alphaS, b = sigmaT * (MathF.Exp(h) - 1f);
                for (var k = 0; k < sample.Length; k++)
                    sample[k] = a * sample[k] - b * m[k];
                break;
            }
            case DpmSolverAlgorithmType.SdeDpmSolverPlusPlus:
            {
                float a = sigmaT / sigmaS * MathF.Exp(-h), b = alphaT * (1f - MathF.Exp(-2f * h));
                var c = sigmaT * MathF.Sqrt(1f - MathF.Exp(-2f * h));
                for (var k = 0; k < sample.Length; k++)
                    sample[k] = a * sample[k] + b * m[k] + c * noise[k];
                break;
            }
            default:
            {
                float a = alphaT / alphaS, b = 2f * (sigmaT * (MathF.Exp(h) - 1f));
                var c = sigmaT * MathF.Sqrt(MathF.Exp(2f * h) - 1f);
                for (var k = 0; k < sample.Length; k++)
                    sample[k] = a * sample[k] - b * m[k] + c * noise[k];
                break;
            }
        }
    }

    /// <summary>Multistep DPM-Solver-2 from the newest output m0 and the previous m1.</summary>
    public void SecondOrder(float[] m0, float[] m1, Span<float> sample, ReadOnlySpan<float> noise)
    {
        var (alphaT, sigmaT) = AlphaSigma(_sigmas[_step + 1]);
        var (alphaS0, sigmaS0) = AlphaSigma(_sigmas[_step]);
        var (alphaS1, sigmaS1) = AlphaSigma(_sigmas[_step - 1]);
        var lambdaT = Lambda(alphaT, sigmaT);
        var lambdaS0 = Lambda(alphaS0, sigmaS0);
        var lambdaS1 = Lambda(alphaS1, sigmaS1);
        float h = lambdaT - lambdaS0, h0 = lambdaS0 - lambdaS1;
        var r0 = h0 / h;
        var d1Scale = 1f / r0;
        // x_t = a·x + b·D0 + c·D1 (+ n·noise), D0 = m0, D1 = (m0 − m1)/r0.
        var (a, b, c, n) = SecondOrderCoefficients(_algorithm, _solverType, alphaT, sigmaT, alphaS0, sigmaS0, h);

        var withNoise = !noise.IsEmpty;
        for (var k = 0; k < sample.Length; k++)
        {
            var d1 = d1Scale * (m0[k] - m1[k]);
            var x = a * sample[k] + b * m0[k] + c * d1;
            sample[k] = withNoise ? x + n * noise[k] : x;
        }
    }

    /// <summary>
    /// The DPM-Solver-2 coefficients of x_t = a·x_s + b·D0 + c·D1 + n·noise (signs folded in) for a step of h in λ
    /// from (α_s, σ_s) to (α_t, σ_t). The multistep and singlestep solvers differ only in where s is and what D0 and D1 are.
    /// </summary>
    public static (float A, float B, float C, float N) SecondOrderCoefficients(
        DpmSolverAlgorithmType algorithm, DpmSolverType solverType, float alphaT, float sigmaT, float alphaS, float sigmaS, float h)
    {
        var midpoint = solverType == DpmSolverType.Midpoint;
        float a, b, c, n = 0f;
        switch (algorithm)
        {
            case DpmSolverAlgorithmType.DpmSolverPlusPlus:
            {
                var e = alphaT * (MathF.Exp(-h) - 1f);
                (a, b) = (sigmaT / sigmaS, -e);
                c = midpoint ? -(0.5f * e) : alphaT * ((MathF.Exp(-h) - 1f) / h + 1f);
                break;
            }
            case DpmSolverAlgorithmType.DpmSolver:
            {
                var e = sigmaT * (MathF.Exp(h) - 1f);
                (a, b) = (alphaT / alphaS, -e);
                c = midpoint ? -(0.5f * e) : -(sigmaT * ((MathF.Exp(h) - 1f) / h - 1f));
                break;
            }
            case DpmSolverAlgorithmType.SdeDpmSolverPlusPlus:
            {
                var e = alphaT * (1f - MathF.Exp(-2f * h));
                (a, b) = (sigmaT / sigmaS * MathF.Exp(-h), e);
                c = midpoint ? 0.5f * e : alphaT * ((1f - MathF.Exp(-2f * h)) / (-2f * h) + 1f);
                n = sigmaT * MathF.Sqrt(1f - MathF.Exp(-2f * h));
                break;
            }
            default:
            {
                var e = sigmaT * (MathF.Exp(h) - 1f);
                (a, b) = (alphaT / alphaS, -(2f * e));
                c = midpoint ? -e : -(2f * (sigmaT * ((MathF.Exp(h) - 1f) / h - 1f)));
                n = sigmaT * MathF.Sqrt(MathF.Exp(2f * h) - 1f);
                break;
            }
        }
        return (a, b, c, n);
    }

    /// <summary>Multistep DPM-Solver-3 from the three newest outputs: dpmsolver++, dpmsolver, and sde-dpmsolver++ (diffusers v0.32).</summary>
    public void ThirdOrder(float[] m0, float[] m1, float[] m2, Span<float> sample, ReadOnlySpan<float> noise)
    {
        var (alphaT, sigmaT) = AlphaSigma(_sigmas[_step + 1]);
        var (alphaS0, sigmaS0) = AlphaSigma(_sigmas[_step]);
        var (alphaS1, sigmaS1) = AlphaSigma(_sigmas[_step - 1]);
        var (alphaS2, sigmaS2) = AlphaSigma(_sigmas[_step - 2]);
        var lambdaT = Lambda(alphaT, sigmaT);
        var lambdaS0 = Lambda(alphaS0, sigmaS0);
        var lambdaS1 = Lambda(alphaS1, sigmaS1);
        var lambdaS2 = Lambda(alphaS2, sigmaS2);
        float h = lambdaT - lambdaS0, h0 = lambdaS0 - lambdaS1, h1 = lambdaS1 - lambdaS2;
        float r0 = h0 / h, r1 = h1 / h;
        float scale10 = 1f / r0, scale11 = 1f / r1, scaleD1 = r0 / (r0 + r1), scaleD2 = 1f / (r0 + r1);

        float a, b, c, d, n = 0f;
        if (_algorithm == DpmSolverAlgorithmType.DpmSolverPlusPlus)
        {
            var e = MathF.Exp(-h) - 1f;
            (a, b, c, d) = (sigmaT / sigmaS0, -(alphaT * e), alphaT * (e / h + 1f), -(alphaT * ((e + h) / (h * h) - 0.5f)));
        }
        else if (_algorithm == DpmSolverAlgorithmType.SdeDpmSolverPlusPlus)
        {
            var e = 1f - MathF.Exp(-2f * h);
            var twoH = 2f * h;
            (a, b, c, d) = (sigmaT / sigmaS0 * MathF.Exp(-h), alphaT * e, alphaT * (e / (-2f * h) + 1f), alphaT * ((e - twoH) / (twoH * twoH) - 0.5f));
            n = sigmaT * MathF.Sqrt(1f - MathF.Exp(-2f * h));
        }
        else
        {
            var e = MathF.Exp(h) - 1f;
            (a, b, c, d) = (alphaT / alphaS0, -(sigmaT * e), -(sigmaT * (e / h - 1f)), -(sigmaT * ((e - h) / (h * h) - 0.5f)));
        }

        for (var k = 0; k < sample.Length; k++)
        {
            var d10 = scale10 * (m0[k] - m1[k]);
            var d11 = scale11 * (m1[k] - m2[k]);
            var d1 = d10 + scaleD1 * (d10 - d11);
            var d2 = scaleD2 * (d10 - d11);
            var x = a * sample[k] + b * m0[k] + c * d1 + d * d2;
            sample[k] = noise.IsEmpty ? x : x + n * noise[k];
        }
    }
}
