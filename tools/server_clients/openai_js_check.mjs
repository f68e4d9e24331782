// Drives a running `localdiffusion serve` with the official OpenAI JavaScript SDK: generate (b64_json, url), stream, typed errors.
// npm install openai && node openai_js_check.mjs   (LOCALDIFFUSION_URL overrides http://127.0.0.1:7860/v1)
import OpenAI from "openai";
const client = new OpenAI({ baseURL: process.env.LOCALDIFFUSION_URL ?? "http://127.0.0.1:7860/v1", apiKey: "unused" });
const r = await client.images.generate({ model: "shapes", prompt: "a red circle on a blue background", n: 2, size: "64x64", response_format: "b64_json", seed: 42 });
console.log("generate:", r.data.length, r.data[0].b64_json.length, r.seeds, r.size);
const u = await client.images.generate({ prompt: "a red circle" });
console.log("url:", u.data[0].url);
const stream = await client.images.generate({ model: "shapes", prompt: "a yellow star", stream: true, partial_images: 2 });
for await (const event of stream) console.log("event:", event.type, event.partial_image_index ?? "", event.b64_json.length);
try { await client.images.generate({ prompt: "x", background: "transparent" }); } catch (e) { console.log("error:", e.constructor.name, e.status, e.param, e.code); }
try { await client.images.generate({ prompt: "x", model: "nope" }); } catch (e) { console.log("error:", e.constructor.name, e.status, e.code); }
