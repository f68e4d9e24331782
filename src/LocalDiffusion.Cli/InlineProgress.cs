namespace LocalDiffusion.Cli;

/// <summary>Reports progress synchronously on the reporting thread (Progress&lt;T&gt; would post out of order).</summary>
internal sealed class InlineProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
