namespace LocalDiffusion.Errors;

/// <summary>Whose fault an error is and what kind it is: what every front-end maps to its own answer.</summary>
public enum ErrorKind
{
    /// <summary>A request value (or an input file the user named) cannot work; nothing was done.</summary>
    InvalidRequest,

    /// <summary>The request asks for something this model cannot do (img2img without a VAE encoder, a refiner drawing from text).</summary>
    ModelIncompatible,

    /// <summary>The model folder: a missing, broken or unsupported file, a config value out of range, a LoRA for another model.</summary>
    ModelFormat,

    /// <summary>The execution provider asked for is not available (its package or drivers are missing).</summary>
    ProviderUnavailable,

    /// <summary>The machine cannot hold the work: the model's weights do not fit in its memory.</summary>
    ResourceLimit,

    /// <summary>NaN or infinity appeared during a generation.</summary>
    Numerics,

    /// <summary>Reading or writing a file failed while working (disk full, permissions changed).</summary>
    Io,

    /// <summary>The caller cancelled.</summary>
    Cancelled,

    /// <summary>Anything else: a bug.</summary>
    Internal,
}
