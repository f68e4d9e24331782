namespace LocalDiffusion.Schedulers;

/// <summary>
/// The Beta(a, b) distribution's quantile function, for the beta sigma schedule (diffusers calls
/// <c>scipy.stats.beta.ppf</c>): the regularized incomplete beta function by its continued fraction, inverted by
/// bisection to full double precision.
/// </summary>
internal static class BetaDistribution
{
    /// <summary>x with I_x(a, b) = <paramref name="probability"/>.</summary>
    public static double Quantile(double probability, double a, double b)
    {
        if (probability <= 0)
            return 0;
        if (probability >= 1)
            return 1;
        double low = 0, high = 1;
        // I_x is increasing in x; halve the bracket until it cannot shrink any more.
        while (true)
        {
            var middle = (low + high) / 2;
            if (middle <= low || middle >= high)
                return middle;
            if (RegularizedIncompleteBeta(middle, a, b) < probability)
                low = middle;
            else
                high = middle;
        }
    }

    /// <summary>I_x(a, b) = B(x; a, b)/B(a, b).</summary>
    public static double RegularizedIncompleteBeta(double x, double a, double b)
    {
        if (x <= 0)
            return 0;
        if (x >= 1)
            return 1;
        // The continued fraction converges fast below the mean-ish point (a+1)/(a+b+2); use the symmetry I_x(a,b) = 1 − I_{1−x}(b,a) above it.
        if (x > (a + 1) / (a + b + 2))
            return 1 - RegularizedIncompleteBeta(1 - x, b, a);
        var logFront = a * Math.Log(x) + b * Math.Log(1 - x) - LogBeta(a, b);
        return Math.Exp(logFront) / a * ContinuedFraction(x, a, b);
    }

    /// <summary>The continued fraction 1/(1 + d₁/(1 + d₂/(1 + …))) of I_x(a, b), by the modified Lentz method.</summary>
    private static double ContinuedFraction(double x, double a, double b)
    {
        const double tiny = 1e-300;
        double c = 1, d = 0, result = 0;
        for (var n = 0; n < 10_000; n++)
        {
            double numerator;
            if (n == 0)
                numerator = 1;
            else if (n % 2 == 0)
            {
                var m = n / 2;
                numerator = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m));
            }
            else
            {
                var m = (n - 1) / 2;
                numerator = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1));
            }

            d = 1 + numerator * d;
            d = 1 / (Math.Abs(d) < tiny ? tiny : d);
            c = 1 + numerator / (Math.Abs(c) < tiny ? tiny : c);
            var factor = c * d;
            result = n == 0 ? factor : result * factor;
            if (n > 0 && Math.Abs(factor - 1) < 1e-15)
                return result - 1;
        }
        throw new ArithmeticException($"The incomplete beta continued fraction did not converge for x={x}, a={a}, b={b}.");
    }

    private static double LogBeta(double a, double b) => LogGamma(a) + LogGamma(b) - LogGamma(a + b);

    // Lanczos approximation, g = 7, 9 terms: relative error ~1e-15 for x > 0.
    private static readonly double[] Lanczos =
    [
        0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
        12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
    ];

    private static double LogGamma(double x)
    {
        if (x < 0.5)
            // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
            return Math.Log(Math.PI / Math.Abs(Math.Sin(Math.PI * x))) - LogGamma(1 - x);
        x -= 1;
        var sum = Lanczos[0];
        for (var i = 1; i < Lanczos.Length; i++)
            sum += Lanczos[i] / (x + i);
        var t = x + 7.5;
        return 0.5 * Math.Log(2 * Math.PI) + (x + 0.5) * Math.Log(t) - t + Math.Log(sum);
    }
}
