using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace LocalDiffusion.Server.Metrics;

/// <summary>
/// Collects one <see cref="Meter"/>'s instruments with a <see cref="MeterListener"/> and renders them in the
/// Prometheus text format (0.0.4). Written here rather than taken from a package because it must listen to this
/// server's meter only (several servers share a process in the tests) and needs no more than counters, gauges and
/// fixed-bucket histograms: about a hundred lines.
/// </summary>
internal sealed class PrometheusTextExporter : IDisposable
{
    private static readonly double[] Buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<Instrument, Series> _series = new();

    public PrometheusTextExporter(Meter meter)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (!ReferenceEquals(instrument.Meter, meter)) return;
            _series[instrument] = new Series(instrument);
            listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Record(i, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Record(i, v, tags));
        _listener.Start();
    }

    private void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (_series.TryGetValue(instrument, out var series)) series.Record(value, LabelsOf(tags));
    }

    private static string LabelsOf(ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.Length == 0) return "";
        var parts = new List<string>(tags.Length);
        foreach (var tag in tags)
            parts.Add($"{Name(tag.Key)}=\"{Convert.ToString(tag.Value, CultureInfo.InvariantCulture)?.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n")}\"");
        parts.Sort(StringComparer.Ordinal);
        return string.Join(",", parts);
    }

    /// <summary>The current values, in the Prometheus text exposition format.</summary>
    public string Render()
    {
        _listener.RecordObservableInstruments(); // gauges are read now, not when they last changed
        var text = new StringBuilder();
        foreach (var series in _series.Values.OrderBy(s => s.Instrument.Name, StringComparer.Ordinal))
            series.Render(text);
        return text.ToString();
    }

    public void Dispose() => _listener.Dispose();

    private static string Name(string name) => string.Concat(name.Select(c => char.IsAsciiLetterOrDigit(c) ? c : '_'));

    private static string Number(double v) => double.IsPositiveInfinity(v) ? "+Inf" : v.ToString("R", CultureInfo.InvariantCulture);

    private sealed class Series(Instrument instrument)
    {
        private readonly Lock _gate = new();
        private readonly Dictionary<string, double> _values = [];
        private readonly Dictionary<string, (long[] Counts, double Sum, long Count)> _histograms = [];

        public Instrument Instrument { get; } = instrument;

        private string Kind => Instrument switch
        {
            Counter<long> or Counter<double> or ObservableCounter<long> => "counter",
            Histogram<double> => "histogram",
            _ => "gauge",
        };

        private string MetricName
        {
            get
            {
                var name = Name(Instrument.Name);
                if (Instrument.Unit == "s") name += "_seconds";
                return Kind == "counter" ? name + "_total" : name;
            }
        }

        public void Record(double value, string labels)
        {
            lock (_gate)
            {
                switch (Kind)
                {
                    case "counter":
                        _values[labels] = _values.GetValueOrDefault(labels) + value;
                        break;
                    case "histogram":
                        var h = _histograms.TryGetValue(labels, out var existing) ? existing : (Counts: new long[Buckets.Length], Sum: 0d, Count: 0L);
                        for (var b = 0; b < Buckets.Length; b++) if (value <= Buckets[b]) h.Counts[b]++;
                        _histograms[labels] = (h.Counts, h.Sum + value, h.Count + 1);
                        break;
                    default:
                        _values[labels] = value;
                        break;
                }
            }
        }

        public void Render(StringBuilder text)
        {
            var name = MetricName;
            text.Append("# HELP ").Append(name).Append(' ').Append(Instrument.Description).Append('\n');
            text.Append("# TYPE ").Append(name).Append(' ').Append(Kind).Append('\n');
            lock (_gate)
            {
                if (Kind != "histogram")
                {
                    if (_values.Count == 0 && Kind == "counter") text.Append(name).Append(" 0\n");
                    foreach (var (labels, value) in _values.OrderBy(p => p.Key, StringComparer.Ordinal))
                        text.Append(name).Append(labels.Length > 0 ? $"{{{labels}}}" : "").Append(' ').Append(Number(value)).Append('\n');
                    return;
                }
                foreach (var (labels, h) in _histograms.OrderBy(p => p.Key, StringComparer.Ordinal))
                {
                    var prefix = labels.Length > 0 ? labels + "," : "";
                    for (var b = 0; b < Buckets.Length; b++)
                        text.Append(name).Append("_bucket{").Append(prefix).Append("le=\"").Append(Number(Buckets[b])).Append("\"} ").Append(h.Counts[b]).Append('\n');
                    text.Append(name).Append("_bucket{").Append(prefix).Append("le=\"+Inf\"} ").Append(h.Count).Append('\n');
                    var braces = labels.Length > 0 ? $"{{{labels}}}" : "";
                    text.Append(name).Append("_sum").Append(braces).Append(' ').Append(Number(h.Sum)).Append('\n');
                    text.Append(name).Append("_count").Append(braces).Append(' ').Append(h.Count).Append('\n');
                }
            }
        }
    }
}
