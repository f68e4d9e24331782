using System.Numerics.Tensors;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// The k-diffusion view shared by Euler, Euler a and LMS: x = x₀ + σ·ε, the UNet sees x/√(σ² + 1), and each model
/// output is turned into the denoised estimate x₀. float32 elementwise, in diffusers' operation order.
/// </summary>
internal static class SigmaSpace
{
    /// <summary>destination = sample / √(σ² + 1).</summary>
    public static void ScaleInput(ReadOnlySpan<float> sample, Span<float> destination, float sigma) =>
        TensorPrimitives.Divide(sample, MathF.Sqrt(sigma * sigma + 1), destination);

    /// <summary>The denoised estimate x₀ for the model's <paramref name="prediction"/> type, written to <paramref name="denoised"/>.</summary>
    public static void Denoise(PredictionType prediction, ReadOnlySpan<float> modelOutput, ReadOnlySpan<float> sample, float sigma, Span<float> denoised)
    {
        switch (prediction)
        {
            case PredictionType.Epsilon:
                // x₀ = x − σ·ε
                TensorPrimitives.Multiply(modelOutput, sigma, denoised);
                TensorPrimitives.Subtract(sample, denoised, denoised);
                break;
            case PredictionType.VPrediction:
                // x₀ = v·(−σ/√(σ²+1)) + x/(σ²+1)
                var variance = sigma * sigma + 1;
                var vScale = -sigma / MathF.Sqrt(variance);
                for (var k = 0; k < denoised.Length; k++)
                    denoised[k] = modelOutput[k] * vScale + sample[k] / variance;
                break;
            case PredictionType.Sample:
                modelOutput.CopyTo(denoised);
                break;
            default:
                throw new InvalidRequestException(nameof(prediction), prediction, null, $"Unknown {nameof(prediction)} type.");
        }
    }

    /// <summary>The ODE derivative d = (x − x₀)/σ, written over <paramref name="denoisedThenDerivative"/>.</summary>
    public static void Derivative(ReadOnlySpan<float> sample, Span<float> denoisedThenDerivative, float sigma)
    {
        TensorPrimitives.Subtract(sample, denoisedThenDerivative, denoisedThenDerivative);
        TensorPrimitives.Divide(denoisedThenDerivative, sigma, denoisedThenDerivative);
    }
}
