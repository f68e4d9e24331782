using LocalDiffusion.Onnx;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Denoising;

/// <summary>
/// The denoising network as the loop sees it, whatever the family: latents [rows, C, h, w] (with any extra input channels
/// after them), one timestep and the prepared conditioning rows → its prediction [rows, C, h, w]. A UNet is one; a family's
/// transformer adapter (SD 3's MMDiT, FLUX's packed transformer) is another.
/// </summary>
internal interface IDenoiser
{
    /// <summary>The model file, for messages.</summary>
    string FilePath { get; }

    /// <summary>Channels of the latents it denoises (4 for SD 1.x/2.x/XL, 16 for SD 3 and FLUX).</summary>
    int LatentChannels { get; }

    /// <summary>Channels of its sample input: the latent channels, or more (an inpainting UNet's 9).</summary>
    int InputChannels { get; }

    /// <summary>Holds its session over a denoising loop.</summary>
    OnnxComponent.Lease Use();

    /// <summary>Binds the conditioning rows of one loop (for every member of a batch) to the network, once.</summary>
    IDenoiserConditioning Prepare(UNetInputs inputs);

    /// <summary>One evaluation over every row of <paramref name="conditioning"/>.</summary>
    void Predict(ReadOnlyMemory<float> input, int latentHeight, int latentWidth, float timestep, IDenoiserConditioning conditioning,
        Span<float> output, RunOptions runOptions);
}

/// <summary>A loop's conditioning rows, bound to its denoiser.</summary>
internal interface IDenoiserConditioning : IDisposable
{
    /// <summary>The rows.</summary>
    UNetInputs Inputs { get; }

    /// <summary>ONNX Runtime calls one evaluation takes (more than one when a static batch or a long prompt splits the rows).</summary>
    int CallsPerEvaluation { get; }

    /// <summary>The timing recorders of the requests in the loop, told about every call.</summary>
    TimingRecorder[] Timings { get; set; }
}
