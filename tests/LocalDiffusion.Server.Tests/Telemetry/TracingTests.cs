using LocalDiffusion.Pipeline;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Http.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Trace;

namespace LocalDiffusion.Server.Tests.Telemetry;

/// <summary>
/// The spans a generation makes, seen by an in-process <see cref="ActivityListener"/> as an OpenTelemetry SDK would see
/// them: their parent/child structure over HTTP (request → queue wait, generate → stages) and in the library alone.
/// Other tests run beside these in the same process, so each test keeps only the spans of its own trace.
/// </summary>
public sealed class TracingTests : IDisposable
{
    private const string TestSourceName = "LocalDiffusion.Tests.Tracing";
    private static readonly ActivitySource TestSource = new(TestSourceName);
    private readonly ConcurrentQueue<Activity> _stopped = new();
    private readonly ActivityListener _listener;

    public TracingTests()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name is LocalDiffusionTelemetry.ActivitySourceName or "LocalDiffusion.Server" or "Microsoft.AspNetCore" or TestSourceName, // by name: the static source may not exist yet
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = _stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(_listener);
    }

    public void Dispose() => _listener.Dispose();

    private List<Activity> TraceOf(Activity root)
    {
        Assert.NotNull(root);
        return _stopped.Where(a => a.TraceId == root.TraceId && a != root).ToList();
    }

    private static Activity Single(List<Activity> spans, string name) =>
        Assert.Single(spans, a => a.OperationName == name);

    private static void AssertEngineStages(List<Activity> spans, Activity generate, int steps)
    {
        foreach (var stage in new[] { "localdiffusion.encode_prompt", "localdiffusion.denoise", "localdiffusion.decode" })
            Assert.Equal(generate.SpanId, Single(spans, stage).ParentSpanId);
        var denoise = Single(spans, "localdiffusion.denoise");
        var events = denoise.Events.Where(e => e.Name == "step").ToList();
        Assert.Equal(steps, events.Count);
        Assert.Equal(steps, events[^1].Tags.Single(t => t.Key == "step").Value);
        var encode = Single(spans, "localdiffusion.encode_prompt");
        var decode = Single(spans, "localdiffusion.decode");
        Assert.True(encode.StartTimeUtc <= denoise.StartTimeUtc && denoise.StartTimeUtc + denoise.Duration <= decode.StartTimeUtc + decode.Duration);
    }

    [Fact]
    public async Task One_generation_over_HTTP_is_a_request_span_with_the_queue_wait_and_the_engine_stages_under_it()
    {
        await using var server = await TestServer.StartAsync(new ServerOptions { Models = [Repo.Shapes] });
        Activity root;
        using (root = TestSource.StartActivity("client")!)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "sdapi/v1/txt2img")
            {
                Content = JsonContent.Create(new { prompt = "a red circle", steps = 3, width = 64, height = 64, seed = 1 }),
            };
            // The caller's trace context, as any traced client sends it: the server's spans join this trace.
            request.Headers.Add("traceparent", $"00-{root.TraceId}-{root.SpanId}-01");
            using var response = await server.Http.SendAsync(request);
            Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        }
        // ASP.NET Core ends its request span just after the response is written.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!TraceOf(root).Any(a => a.Source.Name == "Microsoft.AspNetCore") && DateTime.UtcNow < deadline) await Task.Delay(20);

        var spans = TraceOf(root);
        var http = Assert.Single(spans, a => a.Source.Name == "Microsoft.AspNetCore");
        Assert.Equal(root.SpanId, http.ParentSpanId);
        var wait = Single(spans, "localdiffusion.queue_wait");
        Assert.Equal(http.SpanId, wait.ParentSpanId);
        Assert.Equal("shapes", wait.GetTagItem("localdiffusion.model"));
        var generate = Single(spans, "localdiffusion.generate");
        Assert.Equal(http.SpanId, generate.ParentSpanId);
        Assert.True(wait.StartTimeUtc + wait.Duration <= generate.StartTimeUtc + TimeSpan.FromMilliseconds(1), "the wait ends before the generation starts");
        Assert.Equal(64, generate.GetTagItem("localdiffusion.width"));
        Assert.Equal(3, generate.GetTagItem("localdiffusion.steps"));
        AssertEngineStages(spans, generate, steps: 3);
    }

    [Theory]
    [InlineData("shapes", 4)]
    [InlineData("tiny-flux-schnell", 2)]
    public async Task One_generation_in_the_library_is_a_generate_span_with_its_stages(string model, int steps)
    {
        var folder = model == "shapes" ? Repo.Shapes : Repo.Model("test", model);
        using var pipeline = StableDiffusionPipeline.Load(folder, new PipelineOptions { Device = "cpu" });
        Activity root;
        using (root = TestSource.StartActivity("app")!)
            await pipeline.GenerateAsync(new GenerationRequest { Prompt = "a blue square", Steps = steps, Seed = 3, Width = 64, Height = 64 });

        var spans = TraceOf(root);
        var generate = Single(spans, "localdiffusion.generate");
        Assert.Equal(root.SpanId, generate.ParentSpanId);
        Assert.Equal(ActivityStatusCode.Unset, generate.Status);
        AssertEngineStages(spans, generate, steps);
    }

    [Fact]
    public void The_OpenTelemetry_extensions_name_the_sources_and_meter()
    {
        // The SDK is not referenced by the library: a builder that records what it is asked for stands in for one.
        var tracing = new RecordingTracerBuilder();
        tracing.AddLocalDiffusionInstrumentation();
        Assert.Equal(["LocalDiffusion", "LocalDiffusion.Server"], tracing.Sources);
    }

    private sealed class RecordingTracerBuilder : TracerProviderBuilder
    {
        public List<string> Sources { get; } = [];

        public override TracerProviderBuilder AddInstrumentation<TInstrumentation>(Func<TInstrumentation> instrumentationFactory) => this;

        public override TracerProviderBuilder AddSource(params string[] names)
        {
            Sources.AddRange(names);
            return this;
        }

        public override TracerProviderBuilder AddLegacySource(string operationName) => this;
    }
}

/// <summary><c>serve --otlp-endpoint</c>'s exporter, sending to a stand-in collector (OTLP over HTTP/protobuf) on a loopback port.</summary>
public sealed class OtlpExportTests
{
    [Fact]
    public async Task Spans_of_a_generation_reach_an_OTLP_collector()
    {
        var received = new ConcurrentQueue<(string Path, byte[] Body)>();
        var builder = Microsoft.AspNetCore.Builder.WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        Microsoft.AspNetCore.Hosting.WebHostBuilderKestrelExtensions.UseKestrel(builder.WebHost, k => k.Listen(System.Net.IPAddress.Loopback, 0));
        await using var collector = builder.Build();
        collector.MapPost("/{**path}", async (Microsoft.AspNetCore.Http.HttpContext context) =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body);
            received.Enqueue((context.Request.Path.Value!, body.ToArray()));
            context.Response.ContentType = "application/x-protobuf";
        });
        await collector.StartAsync();
        var address = new Uri(collector.Urls.First());

        using (var pipeline = StableDiffusionPipeline.Load(Repo.Shapes, new PipelineOptions { Device = "cpu" }))
        using (Cli.OtlpExport.Start(address, OpenTelemetry.Exporter.OtlpExportProtocol.HttpProtobuf))
            await pipeline.GenerateAsync(new GenerationRequest { Prompt = "a red circle", Steps = 2, Seed = 1 });
        // Disposing the providers flushed them.

        var traces = received.Where(r => r.Path == "/v1/traces").SelectMany(r => r.Body).ToArray();
        var text = System.Text.Encoding.UTF8.GetString(traces); // protobuf keeps strings as UTF-8 bytes
        foreach (var span in new[] { "localdiffusion.generate", "localdiffusion.encode_prompt", "localdiffusion.denoise", "localdiffusion.decode" })
            Assert.Contains(span, text);
        Assert.Contains("localdiffusion", text); // the service name
    }
}
