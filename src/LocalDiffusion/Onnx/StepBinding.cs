using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Onnx;

/// <summary>
/// An I/O binding whose host tensors are bound again whenever they were written since their last bind. ONNX Runtime
/// copies a host tensor to the device that reads it when the tensor is bound (<c>IOBinding::BindInput</c>), not at each
/// run: on CUDA, TensorRT or DirectML a tensor written after its bind would be read as it was then. The CPU provider
/// reads the bound host memory in place, so there nothing is bound again (a re-bind allocates the input's name in UTF-8,
/// which a 4-step and a 24-step generation would show as per-step garbage).
/// </summary>
internal sealed class StepBinding : IDisposable
{
    private readonly OnnxComponent _model;
    private readonly OrtIoBinding _binding;
    private readonly List<(string Name, HostTensor Tensor, int Version)> _tensors = [];
    private readonly bool _rebindWritten;

    /// <summary>A binding on <paramref name="model"/>'s open session (under a lease; see <see cref="OnnxComponent.CreateIoBinding"/>).</summary>
    public StepBinding(OnnxComponent model)
        : this(model, rebindWritten: model.Sessions.Active.Kind is not ExecutionProviderKind.Cpu)
    {
    }

    /// <summary>As the public constructor, choosing whether written inputs are bound again (tests force it on the CPU).</summary>
    internal StepBinding(OnnxComponent model, bool rebindWritten)
    {
        _model = model;
        _rebindWritten = rebindWritten;
        _binding = model.CreateIoBinding();
    }

    /// <summary>Inputs written since the run before the last <see cref="Run"/>: bound again before it where <see cref="RebindsWritten"/>.</summary>
    internal int LastWritten { get; private set; }

    /// <summary>Whether written inputs are bound again before a run (every provider but the CPU's).</summary>
    internal bool RebindsWritten => _rebindWritten;

    /// <summary>Binds <paramref name="tensor"/> as input <paramref name="name"/>; written later, it is bound again before the next run.</summary>
    public void BindInput(string name, HostTensor tensor)
    {
        _binding.BindInput(name, tensor.Value);
        _tensors.Add((name, tensor, tensor.Version));
    }

    /// <summary>Binds a value that is never written after this call (the prompt's conditioning).</summary>
    public void BindConstant(string name, OrtValue value) => _binding.BindInput(name, value);

    /// <summary>Binds an output: ONNX Runtime writes it at every run (copied back from the device where it runs elsewhere).</summary>
    public void BindOutput(string name, OrtValue value) => _binding.BindOutput(name, value);

    /// <summary>Binds again what was written since its last bind (where the provider needs it), then runs (failures as <see cref="OnnxComponent.RunWithBinding"/>).</summary>
    public void Run(RunOptions runOptions)
    {
        var written = 0;
        for (var i = 0; i < _tensors.Count; i++)
        {
            var (name, tensor, version) = _tensors[i];
            if (tensor.Version == version) continue;
            if (_rebindWritten) _binding.BindInput(name, tensor.Value);
            _tensors[i] = (name, tensor, tensor.Version);
            written++;
        }
        LastWritten = written;
        _model.RunWithBinding(runOptions, _binding);
    }

    public void Dispose() => _binding.Dispose();
}
