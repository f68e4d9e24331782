namespace LocalDiffusion.Schedulers;

/// <summary>
/// Linear multistep coefficients: ∫ from σᵢ to σᵢ₊₁ of the Lagrange basis polynomial through the last
/// <c>order</c> sigmas. diffusers integrates numerically (scipy quad); the integrand is a polynomial of degree ≤ 3,
/// so 3-point Gauss–Legendre quadrature (exact to degree 5) gives the exact value.
/// </summary>
internal static class LmsCoefficients
{
    // Gauss–Legendre nodes and weights on [−1, 1] for 3 points.
    private static readonly double[] Nodes = [-Math.Sqrt(0.6), 0, Math.Sqrt(0.6)];
    private static readonly double[] Weights = [5.0 / 9, 8.0 / 9, 5.0 / 9];

    /// <summary>The coefficient of the derivative from <paramref name="current"/> steps back, at step <paramref name="step"/>.</summary>
    /// <param name="sigmas">The run's sigmas (with the final one).</param>
    /// <param name="order">How many derivatives take part (≤ step + 1).</param>
    /// <param name="step">The current step index i.</param>
    /// <param name="current">0 for the newest derivative, 1 for the one before, …</param>
    public static double Coefficient(IReadOnlyList<float> sigmas, int order, int step, int current)
    {
        double Basis(double tau)
        {
            var product = 1.0;
            for (var k = 0; k < order; k++)
                if (k != current)
                    product *= (tau - sigmas[step - k]) / ((double)sigmas[step - current] - sigmas[step - k]);
            return product;
        }

        double from = sigmas[step], to = sigmas[step + 1];
        double half = (to - from) / 2, middle = (to + from) / 2;
        var integral = 0.0;
        for (var n = 0; n < Nodes.Length; n++)
            integral += Weights[n] * Basis(middle + half * Nodes[n]);
        return integral * half;
    }
}
