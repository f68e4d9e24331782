using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text.Json.Nodes;

namespace LocalDiffusion.Server.Tests.Deploy;

/// <summary>
/// Adds a field to every JSON request body the OpenAI SDK sends: how an application reaches LocalDiffusion's extension
/// fields (steps, seed, …) through an SDK whose options do not have them.
/// </summary>
internal sealed class JsonFieldPolicy(string name, JsonNode value) : PipelinePolicy
{
    /// <inheritdoc/>
    public override void Process(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
    {
        AddField(message);
        ProcessNext(message, pipeline, currentIndex);
    }

    /// <inheritdoc/>
    public override async ValueTask ProcessAsync(PipelineMessage message, IReadOnlyList<PipelinePolicy> pipeline, int currentIndex)
    {
        AddField(message);
        await ProcessNextAsync(message, pipeline, currentIndex);
    }

    private void AddField(PipelineMessage message)
    {
        if (message.Request.Content is not { } content || !message.Request.Headers.TryGetValue("Content-Type", out var type) || type?.StartsWith("application/json", StringComparison.Ordinal) != true) return;
        using var buffer = new MemoryStream();
        content.WriteTo(buffer);
        var body = JsonNode.Parse(buffer.ToArray())!.AsObject();
        body[name] = value.DeepClone();
        message.Request.Content = BinaryContent.Create(BinaryData.FromString(body.ToJsonString()));
    }
}
