using System.CommandLine;

namespace LocalDiffusion.Cli;

/// <summary>An option that takes an absolute http(s) URL, refused at parse time naming the flag and an example.</summary>
internal static class UrlOption
{
    public static Option<Uri?> Create(string name, string description, string example) => new(name)
    {
        Description = description,
        CustomParser = result =>
        {
            var text = result.Tokens.Single().Value;
            if (Uri.TryCreate(text, UriKind.Absolute, out var url) && url.Scheme is "http" or "https") return url;
            result.AddError($"{name} '{text}' is not an absolute http:// or https:// URL (e.g. {example}).");
            return null;
        },
    };
}
