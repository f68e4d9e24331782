using LocalDiffusion;
using LocalDiffusion.SemanticKernel;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.SemanticKernel.TextToImage;

// Beside SK's own Add… extensions, so that a kernel builder finds it without another using.
namespace Microsoft.SemanticKernel;

/// <summary>Registers LocalDiffusion as a Semantic Kernel text-to-image service.</summary>
public static class LocalDiffusionKernelBuilderExtensions
{
    /// <summary>
    /// Adds an in-process <see cref="ITextToImageService"/> over the model in <paramref name="modelDirectory"/>, loaded when
    /// the service is first resolved and released with the kernel's service provider.
    /// </summary>
    /// <param name="builder">The kernel builder.</param>
    /// <param name="modelDirectory">A diffusers-style ONNX model folder (model_index.json).</param>
    /// <param name="options">How the model is opened (device, threads, …); null: the defaults.</param>
    /// <param name="serviceId">A key to register it under, as SK's other Add… methods take; null: unkeyed.</param>
    public static IKernelBuilder AddLocalDiffusionTextToImage(this IKernelBuilder builder, string modelDirectory, PipelineOptions? options = null, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddLocalDiffusionTextToImage(modelDirectory, options, serviceId);
        return builder;
    }

    /// <summary>The same registration on a service collection.</summary>
    /// <param name="services">The services.</param>
    /// <param name="modelDirectory">A diffusers-style ONNX model folder (model_index.json).</param>
    /// <param name="options">How the model is opened; null: the defaults.</param>
    /// <param name="serviceId">A key to register it under; null: unkeyed.</param>
    public static IServiceCollection AddLocalDiffusionTextToImage(this IServiceCollection services, string modelDirectory, PipelineOptions? options = null, string? serviceId = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentException.ThrowIfNullOrEmpty(modelDirectory);
        if (!Directory.Exists(modelDirectory)) throw new DirectoryNotFoundException($"Model folder {modelDirectory} does not exist.");
        // The container owns (and disposes) the one instance; both service types resolve to it.
        services.AddKeyedSingleton(serviceId, (_, _) => LocalDiffusionTextToImageService.Load(modelDirectory, options));
        services.AddKeyedSingleton<ITextToImageService>(serviceId, (sp, key) => sp.GetRequiredKeyedService<LocalDiffusionTextToImageService>(key));
        return services;
    }
}
