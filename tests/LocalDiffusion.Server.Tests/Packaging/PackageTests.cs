using LocalDiffusion.Pipeline;
using System.Diagnostics;
using System.IO.Compression;
using System.Xml.Linq;

namespace LocalDiffusion.Server.Tests.Packaging;

/// <summary>
/// SLOW (about 1–2 minutes on two cores): <c>dotnet pack</c> of LocalDiffusion and LocalDiffusion.Server from a copy of
/// the sources into a temporary folder feed, then a consumer project of its own (outside the repository) that restores
/// them from that feed (nuget.org for everything else), builds against them with the CPU flavour of ONNX Runtime, and
/// runs one generation. Set LOCALDIFFUSION_SKIP_PACK_TEST=1 to skip it.
/// </summary>
public sealed class PackageTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(5);

    [Fact]
    public async Task Packages_restore_build_and_generate_in_a_consumer_project()
    {
        Assert.SkipWhen(Environment.GetEnvironmentVariable("LOCALDIFFUSION_SKIP_PACK_TEST") == "1", "LOCALDIFFUSION_SKIP_PACK_TEST=1");
        var work = Directory.CreateTempSubdirectory("localdiffusion-pack-");
        try
        {
            // A copy, so that packing (a Release build with its own restore) never touches the working tree's bin/ and obj/.
            var source = Path.Combine(work.FullName, "source");
            foreach (var file in new[] { "Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props", "README.md" })
                CopyInto(Path.Combine(Repo.Root, file), Path.Combine(source, file));
            foreach (var project in new[] { "LocalDiffusion", "LocalDiffusion.Server" })
                CopyTree(Path.Combine(Repo.Root, "src", project), Path.Combine(source, "src", project));
            var feed = Path.Combine(work.FullName, "feed");
            await RunAsync("dotnet", ["pack", Path.Combine(source, "src", "LocalDiffusion.Server"), "-o", feed, "-p:RepositoryUrl=https://example.invalid/localdiffusion"], source);
            await RunAsync("dotnet", ["pack", Path.Combine(source, "src", "LocalDiffusion"), "--no-build", "-o", feed, "-p:RepositoryUrl=https://example.invalid/localdiffusion"], source);

            var core = Nuspec(Path.Combine(feed, "LocalDiffusion.0.1.0.nupkg"));
            var server = Nuspec(Path.Combine(feed, "LocalDiffusion.Server.0.1.0.nupkg"));
            foreach (var nuspec in new[] { core, server })
            {
                Assert.Equal("MIT", Element(nuspec, "license"));
                Assert.Equal("README.md", Element(nuspec, "readme"));
                Assert.False(string.IsNullOrWhiteSpace(Element(nuspec, "description")));
                Assert.Equal("https://example.invalid/localdiffusion", nuspec.Descendants().First(e => e.Name.LocalName == "repository").Attribute("url")?.Value);
            }
            // The library brings ONNX Runtime's managed API only: the consumer chooses the native flavour (CPU, GPU, DirectML).
            var dependencies = Dependencies(core);
            Assert.Contains("Microsoft.ML.OnnxRuntime.Managed", dependencies);
            Assert.DoesNotContain("Microsoft.ML.OnnxRuntime", dependencies);
            Assert.DoesNotContain("Microsoft.ML.OnnxRuntime.Gpu", dependencies);
            Assert.Contains("LocalDiffusion", Dependencies(server));

            // The consumer: its own folder (no repository props above it), its own package folder (so a cached 0.1.0 from
            // an earlier run is never used), the machine's cache as a read-only fallback for everything else.
            var consumer = Path.Combine(work.FullName, "consumer");
            Directory.CreateDirectory(consumer);
            var cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
            await File.WriteAllTextAsync(Path.Combine(consumer, "nuget.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <config><add key="globalPackagesFolder" value="{Path.Combine(consumer, "packages")}" /></config>
                  <fallbackPackageFolders><add key="cache" value="{cache}" /></fallbackPackageFolders>
                  <packageSources>
                    <clear />
                    <add key="local" value="{feed}" />
                    <add key="nuget.org" value="https://api.nuget.org/v3/index.json" />
                  </packageSources>
                </configuration>
                """);
            await File.WriteAllTextAsync(Path.Combine(consumer, "Consumer.csproj"), """
                <Project Sdk="Microsoft.NET.Sdk.Web">
                  <PropertyGroup>
                    <OutputType>Exe</OutputType>
                    <TargetFramework>net10.0</TargetFramework>
                    <Nullable>enable</Nullable>
                    <ImplicitUsings>enable</ImplicitUsings>
                    <TreatWarningsAsErrors>true</TreatWarningsAsErrors>
                  </PropertyGroup>
                  <ItemGroup>
                    <PackageReference Include="LocalDiffusion.Server" Version="0.1.0" />
                    <PackageReference Include="Microsoft.ML.OnnxRuntime" Version="1.31.1" />
                  </ItemGroup>
                </Project>
                """);
            await File.WriteAllTextAsync(Path.Combine(consumer, "Program.cs"), """
                using LocalDiffusion;
                using LocalDiffusion.Pipeline;

                var builder = WebApplication.CreateSlimBuilder();
                builder.Services.AddLocalDiffusion(o => o.Models = [args[0]]);
                var app = builder.Build();
                app.UseLocalDiffusion();
                app.MapLocalDiffusionOpenAi();
                using var pipeline = StableDiffusionPipeline.Load(args[0], new PipelineOptions { Device = "cpu" });
                var result = await pipeline.GenerateAsync(new GenerationRequest { Prompt = "a red circle", Steps = 1, Seed = 1 });
                Console.WriteLine($"generated {result.Images[0].Width}x{result.Images[0].Height}");
                """);
            await RunAsync("dotnet", ["build", consumer, "-o", Path.Combine(consumer, "out")], consumer);
            var output = await RunAsync("dotnet", [Path.Combine(consumer, "out", "Consumer.dll"), Repo.Shapes], consumer);
            Assert.Contains("generated 64x64", output);
        }
        finally
        {
            try { work.Delete(recursive: true); } catch (IOException) { } // best effort: a build server may still hold a file
        }
    }

    private static XElement Nuspec(string nupkg)
    {
        using var zip = ZipFile.OpenRead(nupkg);
        using var stream = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal)).Open();
        return XElement.Load(stream);
    }

    private static string? Element(XElement nuspec, string name) => nuspec.Descendants().FirstOrDefault(e => e.Name.LocalName == name)?.Value;

    private static List<string> Dependencies(XElement nuspec) =>
        nuspec.Descendants().Where(e => e.Name.LocalName == "dependency").Select(e => e.Attribute("id")!.Value).ToList();

    private static void CopyInto(string from, string to)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(to)!);
        File.Copy(from, to);
    }

    private static void CopyTree(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(from, file);
            var top = relative.Split(Path.DirectorySeparatorChar)[0];
            if (top is "bin" or "obj") continue;
            CopyInto(file, Path.Combine(to, relative));
        }
    }

    private static async Task<string> RunAsync(string program, string[] arguments, string directory)
    {
        var start = new ProcessStartInfo(program) { WorkingDirectory = directory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        // No build server left running after the test, and no first-run banner.
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        start.Environment["DOTNET_CLI_USE_MSBUILD_SERVER"] = "0";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(Limit);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{program} {string.Join(' ', arguments)} took over {Limit.TotalMinutes} minutes");
        }
        var output = await stdout + await stderr;
        Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', arguments)} failed ({process.ExitCode}):\n{output}");
        return output;
    }
}
