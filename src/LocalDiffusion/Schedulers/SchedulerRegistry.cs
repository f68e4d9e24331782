using LocalDiffusion.Errors;

namespace LocalDiffusion.Schedulers;

/// <summary>
/// Finds schedulers by short id, display name (AUTOMATIC1111's), alias or diffusers class name, and builds them from a
/// <see cref="SchedulerConfig"/>. A variant such as <c>dpmpp_2m_karras</c> is a class plus option overrides applied on
/// top of the config. Register your own <see cref="IScheduler"/> to make it selectable by name.
/// </summary>
public sealed class SchedulerRegistry
{
    private readonly Lock _gate = new();
    private List<Entry> _entries = [];

    /// <summary>A registry holding the built-in schedulers.</summary>
    public SchedulerRegistry()
    {
        foreach (var (info, factory) in BuiltInSchedulers.All)
            Register(info, factory);
    }

    /// <summary>The process-wide registry the CLI and pipeline use by default.</summary>
    public static SchedulerRegistry Default { get; } = new();

    /// <summary>Every registered scheduler, in registration order.</summary>
    public IReadOnlyList<SchedulerInfo> All => _entries.Select(e => e.Info).ToList();

    /// <summary>Adds a scheduler; its id, display name, aliases and class name become names <see cref="Create"/> accepts.</summary>
    /// <param name="info">Its names and properties.</param>
    /// <param name="factory">Builds a fresh instance from a config (class defaults for absent keys are the factory's business).</param>
    /// <exception cref="ArgumentException">One of its names is taken by another registered scheduler.</exception>
    public void Register(SchedulerInfo info, Func<SchedulerConfig, IScheduler> factory)
    {
        ArgumentNullException.ThrowIfNull(info);
        ArgumentNullException.ThrowIfNull(factory);
        lock (_gate)
        {
            var names = NamesOf(info).ToList();
            foreach (var name in names)
                foreach (var existing in _entries)
                    if (existing.Names.Contains(name) && !IsSharedClassName(info, existing.Info, name))
                        throw new InvalidRequestException(nameof(info), null, null, $"Scheduler '{info.Id}': the name '{name}' is already used by '{existing.Info.Id}'.");
            _entries = [.. _entries, new Entry(info, factory, [.. names])];
        }
    }

    /// <summary>Builds the scheduler called <paramref name="name"/> (id, display name, alias or diffusers class name) from <paramref name="config"/>.</summary>
    /// <exception cref="ArgumentException">No scheduler has that name; the message lists the known ids.</exception>
    public IScheduler Create(string name, SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return Find(name).Factory(config);
    }

    /// <summary>The info of the scheduler called <paramref name="name"/>.</summary>
    /// <exception cref="ArgumentException">No scheduler has that name; the message lists the known ids.</exception>
    public SchedulerInfo Describe(string name) => Find(name).Info;

    /// <summary>Builds the scheduler class named by the config's <c>_class_name</c>, configured by the rest of the file.</summary>
    /// <exception cref="ArgumentException">The config has no class name, or the class is not supported; the message lists the supported ones.</exception>
    public IScheduler CreateFromConfig(SchedulerConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var entries = _entries;
        var supported = string.Join(", ", entries.Select(e => e.Info.DiffusersClass).Distinct());
        if (string.IsNullOrEmpty(config.ClassName))
            throw new InvalidRequestException(nameof(config), null, null, $"The scheduler {nameof(config)} has no _class_name; supported classes: {supported}.");
        // The first entry of a class is its plain form; later ones (e.g. the Karras variant) add overrides the config should decide.
        var entry = entries.FirstOrDefault(e => e.Info.DiffusersClass == config.ClassName)
            ?? throw new InvalidRequestException(nameof(config), null, null, $"Scheduler class '{config.ClassName}' is not supported; supported classes: {supported}.");
        return entry.Factory(config);
    }

    private Entry Find(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var key = Normalize(name);
        var entries = _entries;
        // In registration order, so a class name shared by variants resolves to the class's plain (first) form.
        return entries.FirstOrDefault(e => e.Names.Contains(key))
            ?? throw new InvalidRequestException(nameof(name), null, null, $"Unknown scheduler '{name}'; known schedulers: {string.Join(", ", entries.Select(e => e.Info.Id))}.");
    }

    private static IEnumerable<string> NamesOf(SchedulerInfo info) =>
        new[] { info.Id, info.DisplayName, info.DiffusersClass }.Concat(info.Aliases).Select(Normalize).Distinct();

    // Variants of one diffusers class (dpmpp_2m, dpmpp_2m_karras) all list that class; only its first entry answers to it.
    private static bool IsSharedClassName(SchedulerInfo added, SchedulerInfo existing, string name) =>
        added.DiffusersClass == existing.DiffusersClass && name == Normalize(added.DiffusersClass);

    /// <summary>Lower case, letters, digits and '+' only: "DPM++ 2M Karras" → "dpm++2mkarras", "euler_a" → "eulera".</summary>
    internal static string Normalize(string name) =>
        string.Concat(name.Where(c => char.IsLetterOrDigit(c) || c == '+').Select(char.ToLowerInvariant));

    private sealed record Entry(SchedulerInfo Info, Func<SchedulerConfig, IScheduler> Factory, HashSet<string> Names);
}
