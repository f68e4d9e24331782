namespace LocalDiffusion.Schedulers;

/// <summary>
/// The converted model outputs a multistep solver keeps: the newest <c>capacity</c>, the oldest dropped first
/// (diffusers shifts its <c>model_outputs</c> list the same way). Index from the end: [^1] is the newest.
/// Dropped buffers are kept and handed out again by <see cref="Rent"/>, so a warm solver allocates nothing per step.
/// </summary>
internal sealed class ModelOutputHistory(int capacity)
{
    // Sized once (a bad capacity is the scheduler's to report, after construction).
    private readonly List<float[]> _outputs = new(Math.Max(capacity, 1));
    private readonly Stack<float[]> _spare = new(Math.Max(capacity, 1) + 1);

    /// <summary>How many outputs are held (at most the capacity).</summary>
    public int Count => _outputs.Count;

    /// <summary>The output at <paramref name="index"/>, oldest first.</summary>
    public float[] this[Index index] => _outputs[index];

    /// <summary>
    /// A buffer of <paramref name="length"/> elements that is not in the history (contents unspecified), to fill and
    /// then <see cref="Add"/>: a dropped one when there is one, so the held outputs stay intact until then.
    /// </summary>
    public float[] Rent(int length)
    {
        while (_spare.TryPop(out var buffer))
            if (buffer.Length == length) return buffer;
        return new float[length];
    }

    /// <summary>Appends <paramref name="output"/>, dropping the oldest when full (its buffer goes back to <see cref="Rent"/>).</summary>
    public void Add(float[] output)
    {
        if (_outputs.Count == capacity)
        {
            _spare.Push(_outputs[0]);
            _outputs.RemoveAt(0);
        }
        _outputs.Add(output);
    }

    /// <summary>Forgets every output (a new run); their buffers are reused.</summary>
    public void Clear()
    {
        foreach (var output in _outputs) _spare.Push(output);
        _outputs.Clear();
    }
}
