using System.Diagnostics;
using System.Text;

namespace LocalDiffusion.Server.Tests.Deploy;

/// <summary>
/// <c>localdiffusion</c> as a real child process (<c>dotnet LocalDiffusion.Cli.dll …</c>, the build beside the tests),
/// its output collected line by line, so a test can wait for a line, kill it (SIGKILL) or stop it (SIGTERM) as an
/// orchestrator would.
/// </summary>
internal sealed class CliProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly TaskCompletionSource _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private CliProcess(Process process) => _process = process;

    /// <summary>The process id.</summary>
    public int Id => _process.Id;

    /// <summary>Everything written to stdout and stderr so far.</summary>
    public string Output
    {
        get
        {
            lock (_output) return _output.ToString();
        }
    }

    /// <summary>Starts <c>localdiffusion <paramref name="args"/></c>.</summary>
    public static CliProcess Start(params string[] args)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "LocalDiffusion.Cli.dll"));
        foreach (var arg in args) info.ArgumentList.Add(arg);
        info.Environment["COLUMNS"] = "400"; // one line per message: Spectre wraps at the terminal width
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var cli = new CliProcess(process);
        process.OutputDataReceived += (_, e) => cli.Append(e.Data);
        process.ErrorDataReceived += (_, e) => cli.Append(e.Data);
        process.Exited += (_, _) => cli._exited.TrySetResult();
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return cli;
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_output) _output.AppendLine(line);
    }

    /// <summary>Waits until the output holds <paramref name="text"/>; fails if the process ends first or after <paramref name="seconds"/>.</summary>
    public async Task WaitForOutputAsync(string text, double seconds = 60)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (!Output.Contains(text, StringComparison.Ordinal))
        {
            if (_process.HasExited && !Output.Contains(text, StringComparison.Ordinal))
                Assert.Fail($"localdiffusion exited ({_process.ExitCode}) before printing '{text}':\n{Output}");
            if (DateTime.UtcNow > deadline) Assert.Fail($"localdiffusion did not print '{text}' within {seconds} s:\n{Output}");
            await Task.Delay(20);
        }
    }

    /// <summary>Waits for the exit (failing after <paramref name="seconds"/>) and returns the exit code.</summary>
    public async Task<int> WaitForExitAsync(double seconds = 120)
    {
        await _exited.Task.WaitAsync(TimeSpan.FromSeconds(seconds));
        await _process.WaitForExitAsync(); // drains the output
        return _process.ExitCode;
    }

    /// <summary>SIGKILL: the process ends at once, mid-write if it was writing.</summary>
    public void Kill() => _process.Kill();

    /// <summary>SIGTERM, as Kubernetes sends on a pod's termination or a Docker stop.</summary>
    public void Terminate() => Signals.Send(_process.Id, Signals.Term);

    /// <summary>Kills the process if it still runs.</summary>
    public void Dispose()
    {
        try
        {
            if (!_process.HasExited) _process.Kill();
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
    }
}
