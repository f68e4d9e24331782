using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.ML.OnnxRuntime;

namespace LocalDiffusion.Benchmarking;

/// <summary>What every pipeline-level benchmark report starts with: when, where, which runtime, model, size and steps.</summary>
public abstract record BenchmarkReportHeader
{
    /// <summary>UTC time of the run.</summary>
    [JsonPropertyOrder(-8)] // first in the JSON, as before the fields were shared
    public required DateTime Date { get; init; }

    /// <summary>Machine: OS, architecture, logical processors.</summary>
    [JsonPropertyOrder(-7)]
    public required string Machine { get; init; }

    /// <summary>ONNX Runtime version.</summary>
    [JsonPropertyOrder(-6)]
    public required string OnnxRuntime { get; init; }

    /// <summary>The model folder.</summary>
    [JsonPropertyOrder(-5)]
    public required string Model { get; init; }

    /// <summary>The execution provider the sessions ran on.</summary>
    [JsonPropertyOrder(-4)]
    public required string Device { get; init; }

    /// <summary>Image width in pixels.</summary>
    [JsonPropertyOrder(-3)]
    public required int Width { get; init; }

    /// <summary>Image height in pixels.</summary>
    [JsonPropertyOrder(-2)]
    public required int Height { get; init; }

    /// <summary>Denoising steps per generation.</summary>
    [JsonPropertyOrder(-1)]
    public required int Steps { get; init; }

    /// <summary>This machine, as <see cref="Machine"/> describes it.</summary>
    public static string ThisMachine =>
        $"{RuntimeInformation.OSDescription}, {RuntimeInformation.ProcessArchitecture}, {Environment.ProcessorCount} logical processors" +
        // Huge pages change step times by about 10 % (the CLI turns them on where it can): say which it was.
        (Environment.GetEnvironmentVariable("GLIBC_TUNABLES")?.Contains("glibc.malloc.hugetlb=1", StringComparison.Ordinal) == true ? ", malloc huge pages" : "");

    /// <summary>The ONNX Runtime this process runs, as <see cref="OnnxRuntime"/> gives it.</summary>
    public static string OnnxRuntimeVersion => OrtEnv.Instance().GetVersionString();

    /// <summary>The report as indented camelCase JSON.</summary>
    public string ToJson() => JsonSerializer.Serialize(this, GetType(), JsonReport.ReportOptions);
}
