// The library on its own: load a model, generate, save a PNG.
//   dotnet run --project samples/ConsoleApp -- models/shapes "a red circle on a blue background" out.png
using LocalDiffusion;
using LocalDiffusion.Pipeline;

var model = args.Length > 0 ? args[0] : "models/shapes";
var prompt = args.Length > 1 ? args[1] : "a red circle on a blue background";
var output = args.Length > 2 ? args[2] : "out.png";

using var pipeline = StableDiffusionPipeline.Load(model, new PipelineOptions { Device = "auto" }); // auto: a GPU when there is one
Console.WriteLine($"{pipeline.Info.Family.Name} on {pipeline.Info.Device}, native size {pipeline.Info.NativeWidth}x{pipeline.Info.NativeHeight}");

var result = await pipeline.GenerateAsync(new GenerationRequest { Prompt = prompt, Seed = 42 });
result.Images[0].SavePng(output, overwrite: true); // with the A1111 "parameters" text chunk
Console.WriteLine($"Wrote {output} in {result.Elapsed.TotalSeconds:F1} s (seed {result.Seed})");
