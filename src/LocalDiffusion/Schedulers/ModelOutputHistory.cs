namespace LocalDiffusion.Schedulers;

/// <summary>
/// The converted model outputs a multistep solver keeps: the newest <c>solver_order</c>, the oldest dropped first
/// (diffusers shifts its <c>model_outputs</c> list the same way). Index from the end: [^1] is the newest.
/// </summary>
internal sealed class ModelOutputHistory(int capacity)
{
    private readonly List<float[]> _outputs = [];

    /// <summary>How many outputs are held (at most the capacity).</summary>
    public int Count => _outputs.Count;

    /// <summary>The output at <paramref name="index"/>, oldest first.</summary>
    public float[] this[Index index] => _outputs[index];

    /// <summary>Appends <paramref name="output"/>, dropping the oldest when full.</summary>
    public void Add(float[] output)
    {
        if (_outputs.Count == capacity)
            _outputs.RemoveAt(0);
        _outputs.Add(output);
    }

    /// <summary>Forgets every output (a new run).</summary>
    public void Clear() => _outputs.Clear();
}
