using System.CommandLine;
using LocalDiffusion.Adapters;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Cli;

/// <summary><c>--lora PATH[:WEIGHT]</c> (repeatable) and <c>--lora-dir DIR</c> (where the prompt's &lt;lora:NAME:WEIGHT&gt; looks).</summary>
internal sealed class LoraOptions
{
    private readonly Option<string[]> _lora = new("--lora")
    {
        Description = "Apply a LoRA (.safetensors, kohya/A1111 or diffusers/PEFT keys) with an optional weight, e.g. --lora style.safetensors:0.8; repeatable.",
        Arity = ArgumentArity.ZeroOrMore,
    };

    private readonly Option<string?> _directory = new("--lora-dir")
    {
        Description = "The folder where <lora:NAME:WEIGHT> in the prompt finds NAME.safetensors (as A1111's models/Lora).",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(_lora);
        command.Options.Add(_directory);
    }

    public PipelineOptions Apply(ParseResult parse, PipelineOptions options) => options with
    {
        Loras = (parse.GetValue(_lora) ?? []).Select(Parse).ToList(),
        LoraDirectory = parse.GetValue(_directory),
    };

    // PATH[:WEIGHT], weight 1 when none is given.
    internal static LoraAdapter Parse(string value)
    {
        var (path, weight) = ValueText.SplitPathNumber(value);
        return Checked(path, weight ?? 1f);
    }

    private static LoraAdapter Checked(string path, float weight) =>
        File.Exists(path) ? new LoraAdapter(path, weight) : throw new InvalidRequestException("--lora", null, null, called => $"{called} {path}: file not found.");
}
