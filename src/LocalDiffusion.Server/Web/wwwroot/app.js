// LocalDiffusion web UI: talks to this server's OpenAI-compatible API (streaming, with progress events) and
// lists models and samplers from it. No framework, no external files.
"use strict";

const $ = (id) => document.getElementById(id);
const form = $("form");
const state = { key: localStorage.getItem("localdiffusion.key") || "", models: [], running: null, started: 0, mode: "text" };

function headers(json) {
  const h = json ? { "Content-Type": "application/json" } : {};
  if (state.key) h["Authorization"] = "Bearer " + state.key;
  return h;
}

async function api(path, options = {}) {
  // JSON bodies are strings; FormData (image uploads) sets its own multipart content type.
  const response = await fetch(path, { ...options, headers: { ...headers(typeof options.body === "string"), ...(options.headers || {}) } });
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
    mode: state.mode,
    strength: Number($("strength").value),
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
  if (s.mode) setMode(s.mode);
  if (s.strength) {
    $("strength").value = s.strength;
    $("strength-out").textContent = s.strength;
  }
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
  const edit = settings.mode === "image" ? ` · strength ${settings.strength}${settings.masked ? " · masked" : ""}` : "";
  card.querySelector(".card-meta").textContent =
    `${result.size} · ${settings.steps} steps · CFG ${settings.guidance_scale} · ${result.scheduler || settings.scheduler || "default"} · seed ${result.seed}${edit}`;
  card.title = result.parameters || "";
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const link = card.querySelector("a");
  link.href = URL.createObjectURL(new Blob([bytes], { type: "image/png" }));
  link.download = `localdiffusion-${result.seed}.png`;
  card.querySelector(".reuse").addEventListener("click", () => applySettings({ ...settings, seed: result.seed }));
  card.querySelector(".edit").addEventListener("click", async () => {
    setMode("image");
    await loadInitImage(src);
    window.scrollTo({ top: 0, behavior: "smooth" });
  });
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

  let request;
  try {
    request = settings.mode === "image" ? await editRequest(settings) : generationRequest(settings);
  } catch (err) {
    showError(err.message);
    state.running = null;
    $("generate").disabled = false;
    $("cancel").hidden = true;
    setProgress(0, "Ready.");
    return;
  }

  let images = 0;
  try {
    const response = await api(request.path, { method: "POST", body: request.body, signal: controller.signal });
    if (!response.ok) {
      const error = await response.json().catch(() => null);
      throw new Error(error?.error?.message || `HTTP ${response.status}`);
    }
    for await (const { event, data } of readEvents(response)) {
      const seconds = ((performance.now() - state.started) / 1000).toFixed(1);
      if (event === "localdiffusion.progress") {
        setProgress(data.step / data.total_steps, `Step ${data.step} / ${data.total_steps} · ${seconds} s`);
      } else if (event.endsWith(".partial_image")) { // image_generation.* or, for edits, image_edit.*
        showOnStage("data:image/png;base64," + data.b64_json, request.width);
      } else if (event.endsWith(".completed")) {
        images++;
        showOnStage("data:image/png;base64," + data.b64_json, request.width);
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

// The fields generations and edits share: OpenAI's, plus the extensions and the UI's streaming options.
function commonFields(settings) {
  const fields = {
    model: settings.model,
    prompt: settings.prompt,
    negative_prompt: settings.negative_prompt,
    steps: settings.steps,
    guidance_scale: settings.guidance_scale,
    n: settings.n,
    response_format: "b64_json",
    stream: true,
    partial_images: settings.steps >= 4 ? 3 : 0,
    stream_progress: true,
  };
  if (settings.scheduler) fields.scheduler = settings.scheduler;
  if (settings.seed !== null) fields.seed = settings.seed;
  return fields;
}

function generationRequest(settings) {
  const body = { ...commonFields(settings), size: `${settings.width}x${settings.height}` };
  return { path: "/v1/images/generations", body: JSON.stringify(body), width: settings.width };
}

// An OpenAI edit: the picture as a PNG file, the painted mask as a PNG whose transparent pixels mark what to repaint.
async function editRequest(settings) {
  if (!editor.loaded) throw new Error("Choose an image to start from first.");
  const form = new FormData();
  // A soft mask edge of about 1/64 of the picture (1 px at 64, 8 px at 512) hides the seam between kept and repainted pixels.
  const blur = Math.max(1, Math.round(Math.max(editor.init.width, editor.init.height) / 64));
  const fields = { ...commonFields(settings), size: "auto", strength: settings.strength, mask_blur: blur };
  for (const [name, value] of Object.entries(fields)) form.append(name, String(value));
  form.append("image", await canvasBlob(editor.init), "image.png");
  settings.masked = maskIsPainted();
  if (settings.masked) form.append("mask", await canvasBlob(maskForApi()), "mask.png");
  return { path: "/v1/images/edits", body: form, width: editor.init.width };
}

// --- Image to image: the start picture and the mask painted over it. ---
const editor = { init: $("init-canvas"), mask: $("mask-canvas"), loaded: false, tool: "paint", drawing: false, last: null };
const MaxSide = 1024; // larger uploads are scaled down: the output has the picture's size

function setMode(mode) {
  state.mode = mode;
  $("tab-text").setAttribute("aria-selected", String(mode === "text"));
  $("tab-image").setAttribute("aria-selected", String(mode === "image"));
  $("image-panel").hidden = mode !== "image";
  $("size-row").hidden = mode === "image";
}
$("tab-text").addEventListener("click", () => setMode("text"));
$("tab-image").addEventListener("click", () => setMode("image"));
$("strength").addEventListener("input", () => ($("strength-out").textContent = $("strength").value));

function canvasBlob(canvas) {
  return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("The picture could not be encoded."))), "image/png"));
}

function loadInitImage(src) {
  return new Promise((resolve) => {
    const img = new Image();
    img.onload = () => {
      const scale = Math.min(1, MaxSide / Math.max(img.naturalWidth, img.naturalHeight));
      const w = Math.max(8, Math.round(img.naturalWidth * scale));
      const h = Math.max(8, Math.round(img.naturalHeight * scale));
      for (const c of [editor.init, editor.mask]) {
        c.width = w;
        c.height = h;
        c.classList.toggle("pixelated", w < 256);
      }
      const ctx = editor.init.getContext("2d");
      ctx.fillStyle = "#fff"; // transparent pixels would otherwise count as a mask on the server
      ctx.fillRect(0, 0, w, h);
      ctx.drawImage(img, 0, 0, w, h);
      editor.mask.getContext("2d").clearRect(0, 0, w, h);
      $("canvas-stack").style.aspectRatio = `${w} / ${h}`;
      editor.loaded = true;
      for (const id of ["canvas-stack", "mask-tools", "strength-field", "mask-hint"]) $(id).hidden = false;
      $("dropzone").hidden = true;
      showError("");
      resolve();
    };
    img.onerror = () => {
      showError("That file is not a picture this browser can read.");
      resolve();
    };
    img.src = src;
  });
}

function loadFile(file) {
  if (!file) return;
  const url = URL.createObjectURL(file);
  loadInitImage(url).then(() => URL.revokeObjectURL(url));
}
$("image-file").addEventListener("change", (e) => {
  loadFile(e.target.files[0]);
  e.target.value = "";
});
for (const target of [$("dropzone"), $("canvas-stack")]) {
  target.addEventListener("dragover", (e) => {
    e.preventDefault();
    $("dropzone").classList.add("over");
  });
  target.addEventListener("dragleave", () => $("dropzone").classList.remove("over"));
  target.addEventListener("drop", (e) => {
    e.preventDefault();
    $("dropzone").classList.remove("over");
    loadFile(e.dataTransfer.files[0]);
  });
}

function setTool(tool) {
  editor.tool = tool;
  $("tool-paint").setAttribute("aria-pressed", String(tool === "paint"));
  $("tool-erase").setAttribute("aria-pressed", String(tool === "erase"));
}
$("tool-paint").addEventListener("click", () => setTool("paint"));
$("tool-erase").addEventListener("click", () => setTool("erase"));
$("mask-clear").addEventListener("click", () => editor.mask.getContext("2d").clearRect(0, 0, editor.mask.width, editor.mask.height));

// Pointer position in canvas pixels, and the brush radius there (the slider is in screen pixels).
function canvasPoint(e) {
  const r = editor.mask.getBoundingClientRect();
  const k = editor.mask.width / r.width;
  return { x: (e.clientX - r.left) * k, y: (e.clientY - r.top) * k, radius: (Number($("brush").value) / 2) * k };
}

function stroke(from, to) {
  const ctx = editor.mask.getContext("2d");
  ctx.globalCompositeOperation = editor.tool === "erase" ? "destination-out" : "source-over";
  ctx.strokeStyle = ctx.fillStyle = "#ff3d7f";
  ctx.lineCap = ctx.lineJoin = "round";
  ctx.lineWidth = to.radius * 2;
  ctx.beginPath();
  ctx.moveTo(from.x, from.y);
  ctx.lineTo(to.x, to.y);
  ctx.stroke();
  ctx.beginPath();
  ctx.arc(to.x, to.y, to.radius, 0, Math.PI * 2);
  ctx.fill();
}

function moveCursor(e) {
  const cursor = $("brush-cursor");
  const r = $("canvas-stack").getBoundingClientRect();
  const size = Number($("brush").value);
  cursor.style.width = cursor.style.height = size + "px";
  cursor.style.left = e.clientX - r.left + "px";
  cursor.style.top = e.clientY - r.top + "px";
  cursor.hidden = false;
}

editor.mask.addEventListener("pointerdown", (e) => {
  e.preventDefault();
  editor.mask.setPointerCapture(e.pointerId);
  editor.drawing = true;
  editor.last = canvasPoint(e);
  stroke(editor.last, editor.last);
});
editor.mask.addEventListener("pointermove", (e) => {
  moveCursor(e);
  if (!editor.drawing) return;
  const point = canvasPoint(e);
  stroke(editor.last, point);
  editor.last = point;
});
for (const end of ["pointerup", "pointercancel"]) editor.mask.addEventListener(end, () => (editor.drawing = false));
editor.mask.addEventListener("pointerleave", () => ($("brush-cursor").hidden = true));

function maskIsPainted() {
  const data = editor.mask.getContext("2d").getImageData(0, 0, editor.mask.width, editor.mask.height).data;
  for (let i = 3; i < data.length; i += 4) if (data[i] > 127) return true;
  return false;
}

// OpenAI's convention: opaque = keep, fully transparent = repaint. Painted pixels (alpha > 127) become alpha 0.
function maskForApi() {
  const { width, height } = editor.mask;
  const painted = editor.mask.getContext("2d").getImageData(0, 0, width, height);
  const out = document.createElement("canvas");
  out.width = width;
  out.height = height;
  const ctx = out.getContext("2d");
  const mask = ctx.createImageData(width, height);
  for (let i = 0; i < painted.data.length; i += 4) mask.data[i + 3] = painted.data[i + 3] > 127 ? 0 : 255;
  ctx.putImageData(mask, 0, 0);
  return out;
}

loadServerInfo();
pollHealth();
setInterval(pollHealth, 4000);
