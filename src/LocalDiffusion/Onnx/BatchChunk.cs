namespace LocalDiffusion.Onnx;

/// <summary>
/// A slice of a batch sized for a model with a static batch dimension: <see cref="Count"/> real items from
/// <see cref="Start"/>, padded to <see cref="RunBatch"/> by repeating the last item.
/// </summary>
internal readonly record struct BatchChunk(int Start, int Count, int RunBatch)
{
    /// <summary>
    /// Splits <paramref name="total"/> items into runs the model accepts: runs of its static batch, padded; with a dynamic
    /// batch one run, or runs of at most <paramref name="maxRows"/> items when a limit is set.
    /// </summary>
    public static List<BatchChunk> Plan(int total, long? fixedBatch, int? maxRows = null)
    {
        var chunks = new List<BatchChunk>();
        if (fixedBatch is not { } k)
        {
            var limit = Math.Min(maxRows ?? total, total);
            for (var start = 0; start < total; start += limit)
                chunks.Add(new BatchChunk(start, Math.Min(limit, total - start), Math.Min(limit, total - start)));
            return chunks;
        }
        for (var start = 0; start < total; start += (int)k)
            chunks.Add(new BatchChunk(start, Math.Min((int)k, total - start), (int)k));
        return chunks;
    }

    /// <summary>Copies this chunk's items (each <paramref name="itemSize"/> long) from <paramref name="all"/>, padded.</summary>
    public void Gather<T>(ReadOnlySpan<T> all, int itemSize, Span<T> destination)
    {
        all.Slice(Start * itemSize, Count * itemSize).CopyTo(destination);
        var last = all.Slice((Start + Count - 1) * itemSize, itemSize);
        for (var i = Count; i < RunBatch; i++) last.CopyTo(destination.Slice(i * itemSize, itemSize));
    }

    /// <summary>Copies the real items of a run's output (<paramref name="runOutput"/>) into their place in <paramref name="all"/>.</summary>
    public void Scatter(ReadOnlySpan<float> runOutput, int itemSize, Span<float> all) =>
        runOutput[..(Count * itemSize)].CopyTo(all.Slice(Start * itemSize, Count * itemSize));
}
