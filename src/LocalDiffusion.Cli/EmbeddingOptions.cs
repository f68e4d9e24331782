using System.CommandLine;

namespace LocalDiffusion.Cli;

/// <summary><c>--embedding PATH</c> (repeatable) and <c>--embeddings-dir DIR</c>: textual-inversion embeddings, triggered by their file names.</summary>
internal sealed class EmbeddingOptions
{
    private readonly Option<string[]> _embedding = new("--embedding")
    {
        Description = "A textual-inversion embedding (.pt, .bin or .safetensors: A1111, diffusers, SDXL clip_l/clip_g; on SD 3 and FLUX.1 their CLIP encoders take it); its file name in the prompt or negative prompt uses it. Repeatable.",
        Arity = ArgumentArity.ZeroOrMore,
    };

    private readonly Option<string?> _directory = new("--embeddings-dir")
    {
        Description = "A folder of embeddings (as A1111's embeddings/): each file's name in a prompt uses it; files that do not fit the model are skipped.",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(_embedding);
        command.Options.Add(_directory);
    }

    public PipelineOptions Apply(ParseResult parse, PipelineOptions options) => options with
    {
        Embeddings = parse.GetValue(_embedding) ?? [],
        EmbeddingsDirectory = parse.GetValue(_directory),
    };
}
