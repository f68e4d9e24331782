using System.CommandLine;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using LocalDiffusion.Cli.Commands;
using Spectre.Console;

namespace LocalDiffusion.Server.Tests.Deploy;

/// <summary>
/// deploy/kubernetes checked against the real program: every file loads into the Kubernetes API's own types (strictly),
/// the overlays build with kustomize, and what the containers run (args, ports, probes, env, volumes) is what
/// <c>serve</c> and <c>batch</c> really take and answer.
/// </summary>
public sealed class ManifestTests
{
    private static readonly IAnsiConsole Quiet = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(TextWriter.Null) });

    /// <summary>Parses <paramref name="args"/> (after the subcommand) with the real command: an unknown or malformed flag fails.</summary>
    internal static ParseResult Parse(Command command, IList<string> args)
    {
        var parse = command.Parse([.. args.Skip(1)]);
        Assert.True(parse.Errors.Count == 0, $"{command.Name} refuses the manifest's args: {string.Join("; ", parse.Errors.Select(e => e.Message))}");
        return parse;
    }

    private static string Flag(IList<string> args, string flag) => Assert.Single(Flags(args, flag));

    private static IEnumerable<string> Flags(IList<string> args, string flag) =>
        args.Where(a => a.StartsWith(flag + "=", StringComparison.Ordinal)).Select(a => a[(flag.Length + 1)..]);

    [Fact]
    public void Every_file_loads_into_typed_objects_or_as_a_known_custom_resource()
    {
        var all = Manifests.AllFiles();
        Assert.NotEmpty(all);
        foreach (var manifest in all)
        {
            if (manifest.Typed is null)
                Assert.Contains(manifest.ApiVersion, new[] { "keda.sh/v1alpha1", "monitoring.coreos.com/v1", "kustomize.config.k8s.io/v1beta1", "kustomize.config.k8s.io/v1alpha1" });
            else
                Assert.Equal(manifest.Kind, ((IKubernetesObject)manifest.Typed).Kind);
        }
        // Every file a kustomization names is there.
        foreach (var kustomization in all.Where(m => m.ApiVersion.StartsWith("kustomize.config.k8s.io/", StringComparison.Ordinal)))
        {
            var folder = Path.GetDirectoryName(Path.Combine(Repo.Root, kustomization.Source))!;
            var named = new[] { "resources", "components" }.SelectMany(k => kustomization.Json[k]?.AsArray() ?? []).Select(n => (string)n!)
                .Concat((kustomization.Json["patches"]?.AsArray() ?? []).Select(p => (string?)p!["path"]).OfType<string>());
            foreach (var path in named)
                Assert.True(File.Exists(Path.Combine(folder, path)) || Directory.Exists(Path.Combine(folder, path)), $"{kustomization.Source} names {path}, which is missing");
        }
    }

    [Theory]
    [InlineData("cpu")]
    [InlineData("cuda")]
    public void Overlay_runs_serve_with_flags_it_has_on_the_ports_volumes_and_env_it_uses(string overlay)
    {
        Assert.SkipWhen(Manifests.Kubectl is null, "kubectl is absent: the overlays (kustomize builds) are not checked; the files themselves are.");
        var built = Manifests.Build($"overlays/{overlay}");
        var deployment = built.Single<V1Deployment>();
        var pod = deployment.Spec.Template.Spec;
        var container = Assert.Single(pod.Containers);
        var args = container.Args;
        Assert.Equal("serve", args[0]);
        Parse(ServeCommand.Create(Quiet), args);
        Assert.Equal(overlay, Flag(args, "--device"));

        // Ports and probes: serve listens on every interface at --port, the port the probes and the Service use.
        Assert.Equal("0.0.0.0", Flag(args, "--host"));
        var port = Assert.Single(container.Ports);
        Assert.Equal(int.Parse(Flag(args, "--port"), System.Globalization.CultureInfo.InvariantCulture), port.ContainerPort);
        Assert.Equal("/health", container.ReadinessProbe.HttpGet.Path);
        Assert.Equal(port.Name, container.ReadinessProbe.HttpGet.Port.Value);
        Assert.Equal(ProbePaths.Liveness, container.LivenessProbe.HttpGet.Path);
        Assert.Equal(port.Name, container.LivenessProbe.HttpGet.Port.Value);
        var drain = string.Join(' ', container.Lifecycle.PreStop.Exec.Command);
        Assert.Contains($"http://127.0.0.1:{port.ContainerPort}/health", drain);
        Assert.Contains(ProbePaths.IdleQueue, drain);

        // Longer than the drain can take: 5 s, then the queue and what runs, at the longest generation per device.
        var longest = overlay == "cpu" ? 240 : 10;
        var held = int.Parse(Flag(args, "--max-queue"), System.Globalization.CultureInfo.InvariantCulture) + 1;
        Assert.True(pod.TerminationGracePeriodSeconds >= 5 + held * longest, $"terminationGracePeriodSeconds {pod.TerminationGracePeriodSeconds} < 5 + {held} × {longest} s");

        // Volumes: models read-only at --models-dir, images (shared by every replica) at --output-dir, the model cache
        // where LOCALDIFFUSION_CACHE points, /tmp writable (the root file system is not).
        var mounts = container.VolumeMounts.ToDictionary(m => m.MountPath);
        var volumes = pod.Volumes.ToDictionary(v => v.Name);
        Assert.All(container.VolumeMounts, m => Assert.True(volumes.ContainsKey(m.Name), $"mount {m.Name} has no volume"));
        Assert.True(mounts[Flag(args, "--models-dir")].ReadOnlyProperty);
        Assert.True(volumes[mounts[Flag(args, "--models-dir")].Name].PersistentVolumeClaim.ReadOnlyProperty);
        var imagesClaim = volumes[mounts[Flag(args, "--output-dir")].Name].PersistentVolumeClaim.ClaimName;
        var claims = built.Where(m => m.Typed is V1PersistentVolumeClaim).Select(m => (V1PersistentVolumeClaim)m.Typed!).ToDictionary(c => c.Metadata.Name);
        Assert.Equal(["ReadWriteMany"], claims[imagesClaim].Spec.AccessModes);
        Assert.Equal(["ReadOnlyMany"], claims[volumes[mounts[Flag(args, "--models-dir")].Name].PersistentVolumeClaim.ClaimName].Spec.AccessModes);
        var env = container.Env.ToDictionary(e => e.Name);
        Assert.True(mounts.ContainsKey(env[Onnx.ModelCache.EnvironmentVariable].Value));
        Assert.True(mounts.ContainsKey("/tmp"));
        Assert.Equal("api-key", env["LOCALDIFFUSION_API_KEY"].ValueFrom.SecretKeyRef.Key); // the variable serve reads for --api-key

        // Non-root, read-only root file system, nothing to escalate to.
        Assert.True(pod.SecurityContext.RunAsNonRoot);
        Assert.NotEqual(0, pod.SecurityContext.RunAsUser);
        Assert.True(container.SecurityContext.ReadOnlyRootFilesystem);
        Assert.False(container.SecurityContext.AllowPrivilegeEscalation);
        Assert.Equal(["ALL"], container.SecurityContext.Capabilities.Drop);

        // The GPU: one per replica on the cuda overlay, none asked for on the cpu one.
        var gpu = container.Resources.Limits is { } limits && limits.TryGetValue("nvidia.com/gpu", out var quantity) ? quantity : null;
        if (overlay == "cuda") Assert.Equal("1", gpu?.ToString());
        else Assert.Null(gpu);

        // The Service reaches the pods' named port; the budget and the Service select the pods; serve accepts the
        // Service's DNS names as Host headers (anything else gets 403).
        var labels = deployment.Spec.Template.Metadata.Labels;
        var service = built.Single<V1Service>();
        Assert.All(service.Spec.Selector, s => Assert.Equal(s.Value, labels[s.Key]));
        Assert.Equal(port.Name, Assert.Single(service.Spec.Ports).TargetPort.Value);
        Assert.All(built.Single<V1PodDisruptionBudget>().Spec.Selector.MatchLabels, s => Assert.Equal(s.Value, labels[s.Key]));
        var ns = deployment.Metadata.NamespaceProperty;
        var allowed = Flags(args, "--allowed-host").ToList();
        foreach (var name in new[] { service.Metadata.Name, $"{service.Metadata.Name}.{ns}.svc", $"{service.Metadata.Name}.{ns}.svc.cluster.local" })
            Assert.Contains(name, allowed);

        // Prometheus scrapes /metrics on the Service's port, with the API key serve then asks for.
        var monitor = built.SingleOf("ServiceMonitor");
        var endpoint = Assert.Single(monitor["spec"]!["endpoints"]!.AsArray())!;
        Assert.Equal("/metrics", (string?)endpoint["path"]);
        Assert.Equal(service.Spec.Ports[0].Name, (string?)endpoint["port"]);
        Assert.Equal("api-key", (string?)endpoint["authorization"]!["credentials"]!["key"]);
        Assert.All(monitor["spec"]!["selector"]!["matchLabels"]!.AsObject(), s => Assert.Equal((string?)s.Value, service.Metadata.Labels[s.Key]));

        // Autoscaling: KEDA on the queue metrics (cuda), a plain HPA on CPU (cpu); never both on one Deployment.
        if (overlay == "cuda")
        {
            var scaled = built.SingleOf("ScaledObject");
            Assert.Equal(deployment.Metadata.Name, (string?)scaled["spec"]!["scaleTargetRef"]!["name"]);
            var trigger = Assert.Single(scaled["spec"]!["triggers"]!.AsArray())!;
            Assert.Equal("prometheus", (string?)trigger["type"]);
            var query = (string)trigger["metadata"]!["query"]!;
            Assert.Contains(ProbePaths.QueueWaitingMetric + "{", query);
            Assert.Contains(ProbePaths.QueueRunningMetric + "{", query);
            Assert.Contains($"namespace=\"{ns}\"", query);
            Assert.DoesNotContain(built, m => m.Typed is V2HorizontalPodAutoscaler);
        }
        else
        {
            var hpa = built.Single<V2HorizontalPodAutoscaler>();
            Assert.Equal(("Deployment", deployment.Metadata.Name), (hpa.Spec.ScaleTargetRef.Kind, hpa.Spec.ScaleTargetRef.Name));
            Assert.DoesNotContain(built, m => m.Kind == "ScaledObject");
        }
    }

    [Fact]
    public void Ingress_sends_the_public_name_to_the_service_and_retries_busy_replicas()
    {
        var ingress = Manifests.File("components/ingress/ingress.yaml").Single<V1Ingress>();
        var deployment = Manifests.File("base/deployment.yaml").Single<V1Deployment>();
        var service = Manifests.File("base/service.yaml").Single<V1Service>();
        var publicUrl = new Uri(Flag(deployment.Spec.Template.Spec.Containers[0].Args, "--public-url"));
        var rule = Assert.Single(ingress.Spec.Rules);
        Assert.Equal(publicUrl.Host, rule.Host);
        Assert.Equal(service.Metadata.Name, Assert.Single(rule.Http.Paths).Backend.Service.Name);
        Assert.Equal(service.Spec.Ports[0].Name, rule.Http.Paths[0].Backend.Service.Port.Name);
        Assert.Contains("http_429 http_503 non_idempotent", ingress.Metadata.Annotations["nginx.ingress.kubernetes.io/proxy-next-upstream"]);
    }

    [Fact]
    public void Batch_job_shards_over_its_completion_index()
    {
        var job = Manifests.File("batch/job.yaml").Single<V1Job>();
        Assert.Equal("Indexed", job.Spec.CompletionMode);
        var container = Assert.Single(job.Spec.Template.Spec.Containers);
        Assert.Equal("batch", container.Args[0]);
        var shard = Flag(container.Args, "--shard");
        Assert.Equal($"$(JOB_COMPLETION_INDEX)/{job.Spec.Completions}", shard);
        Assert.Contains(container.Env, e => e.Name == "JOB_COMPLETION_INDEX" && e.ValueFrom.FieldRef.FieldPath == "metadata.annotations['batch.kubernetes.io/job-completion-index']");

        // What each pod runs once Kubernetes has expanded $(JOB_COMPLETION_INDEX): the real batch command takes it.
        for (var index = 0; index < job.Spec.Completions; index++)
        {
            var expanded = container.Args.Select(a => a.Replace("$(JOB_COMPLETION_INDEX)", index.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)).ToList();
            var parse = Parse(BatchCommand.Create(Quiet), expanded);
            Assert.Equal(new Cli.Batch.Shard(index, job.Spec.Completions!.Value), Cli.Batch.Shard.Parse(parse.GetValue<string>("--shard")!));
        }
        var mounts = container.VolumeMounts.ToDictionary(m => m.MountPath);
        Assert.StartsWith(Assert.Single(mounts, m => Flag(container.Args, "--out-dir").StartsWith(m.Key + "/", StringComparison.Ordinal)).Key, Flag(container.Args, "--out-dir"));
        Assert.True(Assert.Single(mounts, m => Flag(container.Args, "--prompts-file").StartsWith(m.Key + "/", StringComparison.Ordinal)).Value.ReadOnlyProperty);
        Assert.True(container.SecurityContext.ReadOnlyRootFilesystem);
        Assert.True(mounts.ContainsKey("/tmp"));
    }
}
