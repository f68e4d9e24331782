// Drives a running `localdiffusion serve` with the official OpenAI JavaScript SDK: generate (b64_json, url, GPT-image
// defaults), stream, a streamed edit (image_edit.* events), quality and usage as the SDK's types name them, typed errors.
// npm install openai && node openai_js_check.mjs   (LOCALDIFFUSION_URL overrides http://127.0.0.1:7860/v1)
import OpenAI, { toFile } from "openai";
const client = new OpenAI({ baseURL: process.env.LOCALDIFFUSION_URL ?? "http://127.0.0.1:7860/v1", apiKey: "unused" });
const check = (ok, what) => { if (!ok) { console.error("FAIL:", what); process.exitCode = 1; } else console.log("ok:", what); };

const r = await client.images.generate({ model: "shapes", prompt: "a red circle on a blue background", n: 2, size: "64x64", response_format: "b64_json", seed: 42 });
check(r.data.length === 2 && r.data[0].b64_json.length > 0, "generate b64_json");
check(["low", "medium", "high"].includes(r.quality) && typeof r.usage.input_tokens === "number" && typeof r.usage.input_tokens_details.text_tokens === "number", "quality and usage in ImagesResponse's shape");
const u = await client.images.generate({ prompt: "a red circle", size: "64x64" });
check(typeof u.data[0].url === "string", "url by default for a local model");
const g = await client.images.generate({ model: "gpt-image-1", prompt: "a red circle", size: "64x64" });
check(typeof g.data[0].b64_json === "string" && g.data[0].url === undefined, "gpt-image-1 answers b64_json by default");

const stream = await client.images.generate({ model: "shapes", prompt: "a yellow star", size: "64x64", stream: true, partial_images: 2 });
const types = [];
for await (const event of stream) types.push(event.type);
check(types.at(-1) === "image_generation.completed" && types.includes("image_generation.partial_image"), "generation stream: " + types.join(", "));

const png = Buffer.from(r.data[0].b64_json, "base64");
const edit = await client.images.edit({ model: "shapes", image: await toFile(png, "circle.png", { type: "image/png" }), prompt: "a blue star", size: "64x64", stream: true, partial_images: 2 });
const editTypes = [];
let completed;
for await (const event of edit) { editTypes.push(event.type); if (event.type === "image_edit.completed") completed = event; }
check(completed && completed.b64_json.length > 0 && typeof completed.usage.total_tokens === "number", "edit stream: " + editTypes.join(", "));

for (const [body, status] of [[{ prompt: "x", background: "transparent" }, 400], [{ prompt: "x", model: "nope" }, 404], [{ prompt: "x", n: "2" }, 400], [{ prompt: "x", size: "1024x1024" }, 400]]) {
  try { await client.images.generate(body); check(false, JSON.stringify(body) + " was accepted"); }
  catch (e) { check(e.status === status && e instanceof OpenAI.APIError, `${JSON.stringify(body)} → ${e.constructor.name} ${e.status} ${e.param ?? ""} ${e.code}`); }
}
