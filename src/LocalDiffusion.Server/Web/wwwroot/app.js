// LocalDiffusion web UI: talks to this server's OpenAI-compatible API (streaming, with progress events) and
// lists models and samplers from it. No framework, no external files.
"use strict";

const $ = (id) => document.getElementById(id);
const form = $("form");
const state = { key: localStorage.getItem("localdiffusion.key") || "", models: [], running: null, started: 0 };

function headers(json) {
  const h = json ? { "Content-Type": "application/json" } : {};
  if (state.key) h["Authorization"] = "Bearer " + state.key;
  return h;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...headers(!!options.body), ...(options.headers || {}) } });
  if (response.status === 401) {
    askForKey();
    throw new Error("This server needs an API key.");
  }
  return response;
}

function askForKey() {
  $("key-button").hidden = false;
  const dialog = $("key-dialog");
  if (!dialog.open) {
    $("key-input").value = state.key;
    dialog.showModal();
  }
}

$("key-button").addEventListener("click", askForKey);
$("key-dialog").addEventListener("close", () => {
  if ($("key-dialog").returnValue !== "save") return;
  state.key = $("key-input").value.trim();
  localStorage.setItem("localdiffusion.key", state.key);
  loadServerInfo();
});

function showError(message) {
  const el = $("error");
  el.textContent = message;
  el.hidden = !message;
}

function setStatus(text, kind) {
  const el = $("server-status");
  el.textContent = text;
  el.className = "status " + (kind || "");
}

async function loadServerInfo() {
  try {
    const models = await (await api("/v1/models")).json();
    state.models = models.data;
    const select = $("model");
    const previous = select.value;
    select.replaceChildren(...models.data.map((m) => new Option(m.id + (m.state === "ready" ? "" : ` (${m.state})`), m.id)));
    if (previous && models.data.some((m) => m.id === previous)) select.value = previous;
    else applyNativeSize();
    const samplers = await (await api("/sdapi/v1/samplers")).json();
    const scheduler = $("scheduler");
    const chosen = scheduler.value;
    scheduler.replaceChildren(new Option("Model default", ""), ...samplers.map((s) => new Option(s.name, s.name)));
    scheduler.value = chosen;
    showError("");
  } catch (e) {
    showError(e.message);
  }
}

function currentModel() {
  return state.models.find((m) => m.id === $("model").value);
}

function applyNativeSize() {
  const model = currentModel();
  if (!model || !model.native_size) return;
  const [w, h] = model.native_size.split("x");
  $("width").value = w;
  $("height").value = h;
}

$("model").addEventListener("change", applyNativeSize);
for (const [input, out] of [["steps", "steps-out"], ["guidance", "guidance-out"]]) {
  $(input).addEventListener("input", () => ($(out).textContent = $(input).value));
}
$("seed-random").addEventListener("click", () => ($("seed").value = Math.floor(Math.random() * 4294967295)));
document.addEventListener("keydown", (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === "Enter") {
    e.preventDefault();
    form.requestSubmit();
  }
});

async function pollHealth() {
  try {
    const health = await (await fetch("/health")).json();
    const loading = health.models.filter((m) => m.state !== "ready");
    const q = health.queue;
    if (loading.length) setStatus(`loading ${loading.map((m) => m.id).join(", ")}…`, "busy");
    else if (q.running || q.waiting) setStatus(`${q.running} running, ${q.waiting} waiting`, "busy");
    else setStatus(`ready · ${health.models.length} model${health.models.length === 1 ? "" : "s"}`, "ok");
    if (loading.length === 0 && state.models.some((m) => m.state !== "ready")) loadServerInfo();
  } catch {
    setStatus("server unreachable", "down");
  }
}

function setProgress(fraction, text) {
  const percent = Math.round(Math.max(0, Math.min(1, fraction)) * 100);
  $("progress-fill").style.width = percent + "%";
  $("progress").setAttribute("aria-valuenow", String(percent));
  if (text !== undefined) $("progress-text").textContent = text;
}

function showOnStage(src, width) {
  const img = $("preview");
  img.src = src;
  img.classList.toggle("pixelated", width < 256);
  img.hidden = false;
  $("placeholder").hidden = true;
}

function settingsFromForm() {
  const seed = $("seed").value.trim();
  return {
    model: $("model").value,
    prompt: $("prompt").value,
    negative_prompt: $("negative_prompt").value,
    width: Number($("width").value),
    height: Number($("height").value),
    steps: Number($("steps").value),
    guidance_scale: Number($("guidance").value),
    scheduler: $("scheduler").value,
    seed: seed === "" ? null : Number(seed),
    n: Number($("n").value) || 1,
  };
}

function applySettings(s) {
  if ([...$("model").options].some((o) => o.value === s.model)) $("model").value = s.model;
  $("prompt").value = s.prompt;
  $("negative_prompt").value = s.negative_prompt;
  $("width").value = s.width;
  $("height").value = s.height;
  $("steps").value = s.steps;
  $("steps-out").textContent = s.steps;
  $("guidance").value = s.guidance_scale;
  $("guidance-out").textContent = s.guidance_scale;
  $("scheduler").value = s.scheduler || "";
  $("seed").value = s.seed ?? "";
  $("n").value = s.n;
  $("prompt").focus();
  window.scrollTo({ top: 0, behavior: "smooth" });
}

function addToGallery(b64, settings, result) {
  const card = $("card-template").content.firstElementChild.cloneNode(true);
  const src = "data:image/png;base64," + b64;
  const img = card.querySelector("img");
  img.src = src;
  img.alt = settings.prompt;
  card.querySelector(".card-prompt").textContent = settings.prompt;
  card.querySelector(".card-meta").textContent =
    `${result.size} · ${settings.steps} steps · CFG ${settings.guidance_scale} · ${result.scheduler || settings.scheduler || "default"} · seed ${result.seed}`;
  card.title = result.parameters || "";
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const link = card.querySelector("a");
  link.href = URL.createObjectURL(new Blob([bytes], { type: "image/png" }));
  link.download = `localdiffusion-${result.seed}.png`;
  card.querySelector(".reuse").addEventListener("click", () => applySettings({ ...settings, seed: result.seed }));
  $("gallery").prepend(card);
  $("clear-gallery").hidden = false;
}

$("clear-gallery").addEventListener("click", () => {
  for (const a of $("gallery").querySelectorAll("a[href^='blob:']")) URL.revokeObjectURL(a.href);
  $("gallery").replaceChildren();
  $("clear-gallery").hidden = true;
});

// Reads server-sent events from a fetch response: yields { event, data } objects.
async function* readEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (data) yield { event, data: JSON.parse(data) };
    }
  }
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  if (state.running) return;
  const settings = settingsFromForm();
  if (!settings.prompt.trim()) {
    showError("Write a prompt first.");
    $("prompt").focus();
    return;
  }
  showError("");
  const controller = new AbortController();
  state.running = controller;
  state.started = performance.now();
  $("generate").disabled = true;
  $("cancel").hidden = false;
  setProgress(0, "Waiting for a slot…");

  const body = {
    model: settings.model,
    prompt: settings.prompt,
    negative_prompt: settings.negative_prompt,
    size: `${settings.width}x${settings.height}`,
    steps: settings.steps,
    guidance_scale: settings.guidance_scale,
    n: settings.n,
    response_format: "b64_json",
    stream: true,
    partial_images: settings.steps >= 4 ? 3 : 0,
    stream_progress: true,
  };
  if (settings.scheduler) body.scheduler = settings.scheduler;
  if (settings.seed !== null) body.seed = settings.seed;

  let images = 0;
  try {
    const response = await api("/v1/images/generations", { method: "POST", body: JSON.stringify(body), signal: controller.signal });
    if (!response.ok) {
      const error = await response.json().catch(() => null);
      throw new Error(error?.error?.message || `HTTP ${response.status}`);
    }
    for await (const { event, data } of readEvents(response)) {
      const seconds = ((performance.now() - state.started) / 1000).toFixed(1);
      if (event === "localdiffusion.progress") {
        setProgress(data.step / data.total_steps, `Step ${data.step} / ${data.total_steps} · ${seconds} s`);
      } else if (event === "image_generation.partial_image") {
        showOnStage("data:image/png;base64," + data.b64_json, settings.width);
      } else if (event === "image_generation.completed") {
        images++;
        showOnStage("data:image/png;base64," + data.b64_json, settings.width);
        addToGallery(data.b64_json, settings, data);
        setProgress(1, `Done: ${images} image${images === 1 ? "" : "s"} in ${seconds} s · seed ${data.seed}`);
      } else if (event === "error") {
        throw new Error(data.error?.message || "The generation failed.");
      }
    }
  } catch (err) {
    if (err.name === "AbortError") setProgress(0, "Cancelled.");
    else {
      setProgress(0, "Failed.");
      showError(err.message);
    }
  } finally {
    pollHealth();
    state.running = null;
    $("generate").disabled = false;
    $("cancel").hidden = true;
  }
});

$("cancel").addEventListener("click", () => state.running?.abort());

loadServerInfo();
pollHealth();
setInterval(pollHealth, 4000);
