// An ASP.NET Core app of your own that also serves LocalDiffusion: its OpenAI Images API at /v1, the AUTOMATIC1111 API
// at /sdapi/v1, the web UI at / and /health, beside the app's own /hello.
//   dotnet run --project samples/HostInAspNetCore -- --Model models/shapes --urls http://127.0.0.1:5000
var builder = WebApplication.CreateBuilder(args);
builder.Services.AddLocalDiffusion(o =>
{
    o.Models = [builder.Configuration["Model"] ?? "models/shapes"];
    o.ApiKey = builder.Configuration["ApiKey"]; // optional: then /v1 and /sdapi need "Authorization: Bearer KEY"
});

var app = builder.Build();
app.UseLocalDiffusion(); // errors, browser guard and API key for LocalDiffusion's routes only; it calls UseRouting
app.MapGet("/hello", () => "Hello from the host app");
app.MapLocalDiffusionOpenAi(); // "/v1"; another prefix works too (the web UI needs /v1)
app.MapAutomatic1111();
app.MapLocalDiffusionUi();
app.MapLocalDiffusionHealth(); // 503 until the model has loaded in the background
app.Run();
