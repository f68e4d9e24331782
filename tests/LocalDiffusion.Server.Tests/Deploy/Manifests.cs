using System.Diagnostics;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using k8s;
using YamlDotNet.Serialization;

namespace LocalDiffusion.Server.Tests.Deploy;

/// <summary>One YAML document of deploy/: its generic form (every kind), and its typed form for Kubernetes' own kinds.</summary>
/// <param name="Source">The file (or kustomize build) it came from, for messages.</param>
/// <param name="Json">The document as JSON (scalars as YAML wrote them, numbers as strings).</param>
/// <param name="Typed">The KubernetesClient model (V1Deployment, …), loaded strictly: an unknown field fails; null for CRDs and kustomize files.</param>
internal sealed record Manifest(string Source, JsonObject Json, object? Typed)
{
    /// <summary>apiVersion.</summary>
    public string ApiVersion => (string)Json["apiVersion"]!;

    /// <summary>kind.</summary>
    public string Kind => (string)Json["kind"]!;

    /// <summary>metadata.name, if any.</summary>
    public string? Name => (string?)Json["metadata"]?["name"];
}

/// <summary>Loads deploy/kubernetes: its files one by one, and its overlays built by kustomize (<c>kubectl kustomize</c>).</summary>
internal static partial class Manifests
{
    public static string Root => Path.Combine(Repo.Root, "deploy", "kubernetes");

    // Kinds without a model in KubernetesClient (custom resources, kustomize's own files): loaded generically.
    private static readonly string[] Generic = ["keda.sh/", "monitoring.coreos.com/", "kustomize.config.k8s.io/"];

    /// <summary>Every document of every YAML file under deploy/kubernetes.</summary>
    public static List<Manifest> AllFiles() =>
        [.. Directory.EnumerateFiles(Root, "*.yaml", SearchOption.AllDirectories).Order(StringComparer.Ordinal).SelectMany(f => Load(System.IO.File.ReadAllText(f), Path.GetRelativePath(Repo.Root, f)))];

    /// <summary>The documents of one file, e.g. base/deployment.yaml.</summary>
    public static List<Manifest> File(string relative) =>
        [.. Load(System.IO.File.ReadAllText(Path.Combine(Root, relative)), Path.Combine("deploy", "kubernetes", relative))];

    /// <summary>The documents of <paramref name="yaml"/>; Kubernetes kinds also loaded into their typed models, strictly.</summary>
    public static IEnumerable<Manifest> Load(string yaml, string source)
    {
        foreach (var document in DocumentSeparator().Split(yaml))
        {
            var generic = new DeserializerBuilder().Build().Deserialize<object?>(document);
            if (generic is null) continue;
            var json = JsonNode.Parse(new SerializerBuilder().JsonCompatible().Build().Serialize(generic))!.AsObject();
            var apiVersion = (string?)json["apiVersion"] ?? throw new InvalidDataException($"{source}: a document without apiVersion");
            object? typed = null;
            if (!Generic.Any(g => apiVersion.StartsWith(g, StringComparison.Ordinal)))
            {
                var loaded = KubernetesYaml.LoadAllFromString(document, strict: true);
                typed = Assert.Single(loaded);
            }
            yield return new Manifest(source, json, typed);
        }
    }

    /// <summary>Whether kubectl (which builds kustomizations offline) is on this machine.</summary>
    public static string? Kubectl => new[] { "/usr/bin/kubectl", "/usr/local/bin/kubectl" }.FirstOrDefault(System.IO.File.Exists);

    /// <summary><c>kubectl kustomize</c> of a folder under deploy/kubernetes, loaded.</summary>
    public static List<Manifest> Build(string folder)
    {
        var info = new ProcessStartInfo(Kubectl!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add("kustomize");
        info.ArgumentList.Add(Path.Combine(Root, folder));
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"kubectl kustomize {folder} failed: {stderr}");
        return [.. Load(stdout.Result, $"kustomize {folder}")];
    }

    /// <summary>The one typed object of kind <typeparamref name="T"/>.</summary>
    public static T Single<T>(this IEnumerable<Manifest> manifests) => Assert.Single(manifests.Select(m => m.Typed).OfType<T>());

    /// <summary>The one generic document of <paramref name="kind"/>.</summary>
    public static JsonObject SingleOf(this IEnumerable<Manifest> manifests, string kind) => Assert.Single(manifests, m => m.Kind == kind).Json;

    [GeneratedRegex(@"^---\s*$", RegexOptions.Multiline)]
    private static partial Regex DocumentSeparator();
}
