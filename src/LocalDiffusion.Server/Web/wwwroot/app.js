// LocalDiffusion web UI: talks to this server's OpenAI-compatible API (streaming, with progress events) and
// lists models and samplers from it. No framework, no external files.
"use strict";

const $ = (id) => document.getElementById(id);
const form = $("form");
const state = { key: localStorage.getItem("localdiffusion.key") || "", models: [], mode: "text" };

function headers(json) {
  const h = json ? { "Content-Type": "application/json" } : {};
  if (state.key) h["Authorization"] = "Bearer " + state.key;
  return h;
}

async function api(path, options = {}) {
  // JSON bodies are strings; FormData (image uploads) sets its own multipart content type.
  const response = await fetch(path, { ...options, headers: { ...headers(typeof options.body === "string"), ...(options.headers || {}) } });
  if (response.status === 401) {
    askForKey(Boolean(state.key));
    throw new Error(state.key ? "That key was refused by the server." : "This server needs an API key.");
  }
  return response;
}

// refused: a key was sent and the server said no, which deserves its own message.
function askForKey(refused) {
  $("key-button").hidden = false;
  $("key-message").hidden = refused;
  $("key-refused").hidden = !refused;
  $("boot").textContent = refused ? "That key was refused by the server." : "This server needs an API key.";
  const dialog = $("key-dialog");
  if (!dialog.open) {
    $("key-input").value = state.key;
    dialog.showModal();
  }
}

$("key-button").addEventListener("click", () => askForKey(false));
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
  $("server-status-text").textContent = text;
  el.className = "status " + (kind || "");
}

// The form appears only once the server has said what it serves: never a guessed size or an empty model list.
async function loadServerInfo() {
  try {
    const models = await (await api("/v1/models")).json();
    state.models = models.data;
    const select = $("model");
    const previous = select.value;
    select.replaceChildren(...models.data.map((m) => new Option(m.id + (m.state === "ready" ? "" : ` (${m.state})`), m.id)));
    if (previous && models.data.some((m) => m.id === previous)) select.value = previous;
    else {
      applyNativeSize();
      applyFamily();
    }
    const samplers = await (await api("/sdapi/v1/samplers")).json();
    const scheduler = $("scheduler");
    const chosen = scheduler.value;
    scheduler.replaceChildren(new Option("Model default", ""), ...samplers.map((s) => new Option(s.name, s.name)));
    scheduler.value = chosen;
    await loadControlNets();
    await loadUpscalers();
    showError("");
    showMain();
  } catch (e) {
    if ($("key-dialog").open) return; // the dialog says what is wrong
    showMain();
    showError(e.message);
  }
}

// --- ControlNet: shown when the server has a --controlnet-dir; one unit, sent in the OpenAI body's "controlnets" extension. ---
const controlNet = { image: null };

async function loadControlNets() {
  const list = (await (await api("/controlnet/model_list")).json()).model_list || [];
  const select = $("controlnet-model");
  const chosen = select.value;
  select.replaceChildren(new Option("Off", ""), ...list.map((name) => new Option(name, name)));
  if (list.includes(chosen)) select.value = chosen;
  $("controlnet-panel").hidden = list.length === 0;
}

$("controlnet-image").addEventListener("change", () => {
  const file = $("controlnet-image").files[0];
  controlNet.image = null;
  if (!file) return;
  const reader = new FileReader();
  reader.onload = () => { controlNet.image = String(reader.result); };
  reader.readAsDataURL(file);
});

// The unit for a generation, or null when no ControlNet is chosen.
function controlNetUnit() {
  const model = $("controlnet-model").value;
  if (!model) return null;
  if (!controlNet.image) throw new Error("Choose a control image for the ControlNet first (or set ControlNet to Off).");
  const weight = Number($("controlnet-weight").value);
  if (!(weight >= 0 && weight <= 10)) throw new Error("The ControlNet scale must be between 0 and 10.");
  return { model, image: controlNet.image, module: $("controlnet-module").value, weight };
}

// The hires fix's upscalers (latent modes, built-ins, --upscaler-dir models) and the Upscale buttons' (no latent modes, no None).
async function loadUpscalers() {
  const [latent, upscalers] = await Promise.all([
    api("/sdapi/v1/latent-upscale-modes").then((r) => r.json()),
    api("/sdapi/v1/upscalers").then((r) => r.json()),
  ]);
  const hires = $("hires-upscaler");
  const chosenHires = hires.value;
  hires.replaceChildren(...latent.map((m) => new Option(m.name, m.name)), ...upscalers.map((u) => new Option(u.name, u.name)));
  if (chosenHires) hires.value = chosenHires;
  const upscale = $("upscaler");
  const chosen = upscale.value;
  const models = upscalers.filter((u) => u.name !== "None");
  upscale.replaceChildren(...models.map((u) => new Option(u.name, u.name)));
  // An upscaler model when the server has one (that is what the button is for), else Lanczos.
  upscale.value = chosen || (models.find((u) => u.model_path) || models.find((u) => u.name === "Lanczos") || models[0] || {}).name || "";
}

$("hires-strength").addEventListener("input", () => ($("hires-strength-out").textContent = $("hires-strength").value));

function showMain() {
  const first = $("main").hidden;
  $("main").hidden = false;
  $("boot").hidden = true;
  if (first) loadHistory();
}

function currentModel() {
  return state.models.find((m) => m.id === $("model").value);
}

function nativeSize() {
  const model = currentModel();
  if (!model || !model.native_size) return null;
  const [w, h] = model.native_size.split("x").map(Number);
  return { w, h };
}

function applyNativeSize() {
  const native = nativeSize();
  fillSizePresets();
  if (!native) return;
  $("width").value = native.w;
  $("height").value = native.h;
  matchSizePreset();
}

// Common aspect ratios at the model's native pixel count, rounded to multiples of 8: a model draws best near its own area.
const AspectRatios = [[1, 1], [4, 3], [3, 4], [3, 2], [2, 3], [16, 9], [9, 16]];
function fillSizePresets() {
  const select = $("size-preset");
  const native = nativeSize();
  const options = [new Option("Custom", "")];
  if (native) {
    const area = native.w * native.h;
    const seen = new Set();
    const add = (w, h, label) => {
      const key = `${w}x${h}`;
      if (seen.has(key)) return;
      seen.add(key);
      options.push(new Option(`${label} · ${w}×${h}`, key));
    };
    add(native.w, native.h, "Native");
    for (const [a, b] of AspectRatios) {
      const round8 = (x) => Math.max(8, Math.round(x / 8) * 8);
      add(round8(Math.sqrt((area * a) / b)), round8(Math.sqrt((area * b) / a)), `${a}:${b}`);
    }
  }
  select.replaceChildren(...options);
}

function matchSizePreset() {
  const key = `${$("width").value}x${$("height").value}`;
  const select = $("size-preset");
  select.value = [...select.options].some((o) => o.value === key) ? key : "";
}

$("size-preset").addEventListener("change", () => {
  const value = $("size-preset").value;
  if (!value) return;
  const [w, h] = value.split("x");
  $("width").value = w;
  $("height").value = h;
});
for (const id of ["width", "height"]) $(id).addEventListener("input", matchSizePreset);

// A model's own defaults (Turbo: 1 step, guidance 0; LCM: 4 steps at 8.5) replace the form's when it is chosen, and the
// negative prompt is offered only where it can matter: never for LCM (guidance is embedded), and not at guidance ≤ 1.
function applyFamily() {
  const model = currentModel();
  if (model?.defaults) {
    $("steps").value = model.defaults.steps;
    $("guidance").value = model.defaults.guidance_scale;
    $("guidance-out").textContent = $("guidance").value;
  }
  updateNegativePrompt();
}

function updateNegativePrompt() {
  const model = currentModel();
  const embedded = model?.guidance === "embedded" || model?.guidance === "none";
  $("negative-field").hidden = embedded;
  const unused = !embedded && Number($("guidance").value) <= 1;
  $("negative_prompt").disabled = embedded || unused;
  $("negative-hint").hidden = !unused;
}

$("guidance").addEventListener("input", updateNegativePrompt);
$("model").addEventListener("change", () => {
  applyNativeSize();
  applyFamily();
});
$("guidance").addEventListener("input", () => ($("guidance-out").textContent = $("guidance").value));
$("seed-random").addEventListener("click", () => ($("seed").value = Math.floor(Math.random() * 4294967295)));
document.addEventListener("keydown", (e) => {
  if ((e.ctrlKey || e.metaKey) && e.key === "Enter" && !$("main").hidden) {
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

// alt says what the stage shows: a live preview (and which decoder made it: the model's TAESD or its VAE) or the picture.
function showOnStage(src, width, previewDecoder) {
  const img = $("preview");
  img.src = src;
  img.alt = previewDecoder ? `Live preview (${previewDecoder})` : "Generated picture";
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
    negative_prompt: $("negative_prompt").disabled ? "" : $("negative_prompt").value,
    width: Number($("width").value),
    height: Number($("height").value),
    steps: Number($("steps").value),
    guidance_scale: Number($("guidance").value),
    scheduler: $("scheduler").value,
    seed: seed === "" ? null : Number(seed),
    n: Number($("n").value) || 1,
    hires: state.mode === "text" && $("hires").checked
      ? { scale: Number($("hires-scale").value), upscaler: $("hires-upscaler").value, steps: Number($("hires-steps").value) || 0, strength: Number($("hires-strength").value) }
      : null,
  };
}

function applySettings(s) {
  if ([...$("model").options].some((o) => o.value === s.model)) $("model").value = s.model;
  fillSizePresets();
  if (s.prompt !== undefined) $("prompt").value = s.prompt;
  if (s.negative_prompt !== undefined) $("negative_prompt").value = s.negative_prompt;
  if (s.width) $("width").value = s.width;
  if (s.height) $("height").value = s.height;
  matchSizePreset();
  if (s.steps) $("steps").value = s.steps;
  if (s.guidance_scale !== undefined) {
    $("guidance").value = s.guidance_scale;
    $("guidance-out").textContent = $("guidance").value;
  }
  if (s.scheduler !== undefined) $("scheduler").value = [...$("scheduler").options].some((o) => o.value === s.scheduler) ? s.scheduler : "";
  if (s.seed !== undefined) $("seed").value = s.seed ?? "";
  if (s.n) $("n").value = s.n;
  if (s.mode === "text" || s.mode === "image") setMode(s.mode);
  $("hires").checked = !!s.hires;
  if (s.hires) {
    $("hires-scale").value = s.hires.scale;
    if ([...$("hires-upscaler").options].some((o) => o.value === s.hires.upscaler)) $("hires-upscaler").value = s.hires.upscaler;
    $("hires-steps").value = s.hires.steps;
    $("hires-strength").value = s.hires.strength;
    $("hires-strength-out").textContent = s.hires.strength;
    $("hires-section").open = true;
  }
  if (s.strength) {
    $("strength").value = s.strength;
    $("strength-out").textContent = s.strength;
  }
  $("prompt").focus();
  window.scrollTo({ top: 0, behavior: "smooth" });
}

// --- History: every picture and its settings, kept in this browser's IndexedDB so a reload keeps them. ---
const historyDb = { db: null };

function openHistory() {
  return new Promise((resolve) => {
    if (!window.indexedDB) return resolve(null);
    const request = indexedDB.open("localdiffusion", 1);
    request.onupgradeneeded = () => request.result.createObjectStore("history", { keyPath: "id", autoIncrement: true });
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => resolve(null); // private windows may refuse: the gallery still works, unsaved
  });
}

function historyStore(mode) {
  return historyDb.db.transaction("history", mode).objectStore("history");
}

function settled(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function loadHistory() {
  historyDb.db = await openHistory();
  if (!historyDb.db) {
    document.body.dataset.history = "unavailable";
    return;
  }
  const entries = await settled(historyStore("readonly").getAll());
  for (const entry of entries) renderCard(entry); // oldest first: each is prepended, so the newest ends on top
  document.body.dataset.history = "loaded"; // tests wait for this before counting cards
}

async function addToGallery(b64, settings, result) {
  const entry = {
    created: Date.now(),
    b64,
    settings,
    result: { size: result.size, seed: result.seed, scheduler: result.scheduler || "", parameters: result.parameters || "" },
  };
  if (historyDb.db) {
    try {
      entry.id = await settled(historyStore("readwrite").add(entry));
    } catch (e) {
      showError("The picture could not be kept in this browser's history: " + e.message);
    }
  }
  renderCard(entry);
}

function pngBlob(b64) {
  return new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], { type: "image/png" });
}

function renderCard({ id, b64, settings, result }) {
  const card = $("card-template").content.firstElementChild.cloneNode(true);
  const src = "data:image/png;base64," + b64;
  const img = card.querySelector("img");
  img.src = src;
  img.alt = settings.prompt;
  card.querySelector(".card-prompt").textContent = settings.prompt;
  // A variation's steps and guidance are the server's defaults, not the form's: its meta leaves them out.
  const meta = settings.mode === "variation"
    ? [result.size, "variation", result.scheduler || "default", `seed ${result.seed}`]
    : [result.size, `${settings.steps} steps`, `CFG ${settings.guidance_scale}`, result.scheduler || settings.scheduler || "default", `seed ${result.seed}`];
  if (settings.mode === "image") meta.push(`strength ${settings.strength}${settings.masked ? " · masked" : ""}`);
  if (settings.hires) meta.push(`hires ×${settings.hires.scale} ${settings.hires.upscaler}`);
  if (settings.upscaled) meta.push(`upscaled by ${settings.upscaled}`);
  card.querySelector(".card-meta").textContent = meta.join(" · ");
  card.title = result.parameters || "";
  const link = card.querySelector("a");
  link.href = URL.createObjectURL(pngBlob(b64));
  link.download = `localdiffusion-${result.seed}.png`;
  card.querySelector(".reuse").addEventListener("click", () =>
    applySettings({ ...settings, mode: settings.mode === "variation" ? "text" : settings.mode, seed: result.seed }));
  card.querySelector(".edit").addEventListener("click", async () => {
    setMode("image");
    await loadInitImage(src);
    window.scrollTo({ top: 0, behavior: "smooth" });
  });
  card.querySelector(".variations").addEventListener("click", () => startVariations(b64, settings, result));
  card.querySelector(".upscale").addEventListener("click", () => startUpscale(b64, settings, result));
  card.querySelector(".delete").addEventListener("click", async () => {
    if (historyDb.db && id !== undefined) await settled(historyStore("readwrite").delete(id));
    URL.revokeObjectURL(link.href);
    // Keep the keyboard's place: focus moves to the next card's delete button, or the prompt.
    const next = card.nextElementSibling || card.previousElementSibling;
    card.remove();
    (next ? next.querySelector(".delete") : $("prompt")).focus();
    $("clear-gallery").hidden = $("gallery").children.length === 0;
  });
  $("gallery").prepend(card);
  $("clear-gallery").hidden = false;
}

$("clear-gallery").addEventListener("click", async () => {
  if (historyDb.db) await settled(historyStore("readwrite").clear());
  for (const a of $("gallery").querySelectorAll("a[href^='blob:']")) URL.revokeObjectURL(a.href);
  $("gallery").replaceChildren();
  $("clear-gallery").hidden = true;
  $("prompt").focus();
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

// --- Jobs: each Generate sends a request at once; the server's queue orders them, and /v1/queue tells where each stands. ---
// Browsers open about six connections to one server and each job holds one while it waits, so a few are allowed at a time.
const MaxJobs = 4;
const jobs = [];
let queueTimer = null;

function newJobId() {
  const random = crypto.getRandomValues(new Uint32Array(2));
  return `ui-${Date.now().toString(36)}-${random[0].toString(36)}${random[1].toString(36)}`;
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const settings = settingsFromForm();
  if (!settings.prompt.trim()) {
    showError("Write a prompt first.");
    $("prompt").focus();
    return;
  }
  if (!(settings.steps >= 1 && settings.steps <= 1000)) {
    showError("Steps must be between 1 and 1000.");
    $("steps").focus();
    return;
  }
  let request;
  try {
    request = settings.mode === "image" ? await editRequest(settings) : generationRequest(settings);
  } catch (err) {
    showError(err.message);
    return;
  }
  runJob(settings, request);
});

function startVariations(b64, settings, result) {
  const [w, h] = String(result.size).split("x").map(Number);
  const fields = {
    model: settings.model,
    n: Number($("n").value) || 1,
    size: `${w}x${h}`,
    response_format: "b64_json",
    stream: true,
    stream_progress: true,
  };
  const form = new FormData();
  for (const [name, value] of Object.entries(fields)) form.append(name, String(value));
  form.append("image", pngBlob(b64), "image.png");
  const variation = { ...settings, mode: "variation", width: w, height: h, seed: null };
  runJob(variation, { path: "/v1/images/variations", body: form, width: w, label: "Variations" });
}

async function runJob(settings, request) {
  if (jobs.length >= MaxJobs) {
    showError(`Up to ${MaxJobs} jobs can wait at once; cancel one or wait for one to finish.`);
    return;
  }
  showError("");
  const job = { id: newJobId(), settings, request, controller: new AbortController(), status: "sending", position: 0, step: 0, total: settings.steps, started: performance.now(), cancelled: false };
  jobs.push(job);
  renderQueue();
  if (!queueTimer) queueTimer = setInterval(pollQueue, 500);
  if (jobs.length === 1) setProgress(0, "Waiting for a slot…");

  let images = 0;
  try {
    const response = await api(request.path, { method: "POST", body: request.body, signal: job.controller.signal, headers: { "X-LocalDiffusion-Job-Id": job.id } });
    if (!response.ok) {
      const error = await response.json().catch(() => null);
      throw Object.assign(new Error(error?.error?.message || `HTTP ${response.status}`), { code: error?.error?.code });
    }
    job.status = "running";
    renderQueue();
    if (request.a1111 || request.extras) {
      setProgress(0.5, request.extras ? "Upscaling…" : "Drawing and redrawing at the hires size…");
      const data = await response.json();
      const seconds = ((performance.now() - job.started) / 1000).toFixed(1);
      const info = request.a1111 ? JSON.parse(data.info) : null;
      const pictures = request.a1111 ? data.images : [data.image];
      for (let i = 0; i < pictures.length; i++) {
        const size = pngSize(pictures[i]);
        const result = request.a1111
          ? { size, seed: info.all_seeds[i], scheduler: info.sampler_name, parameters: info.infotexts[i] }
          : { ...request.extras, size };
        images++;
        showOnStage("data:image/png;base64," + pictures[i], Number(size.split("x")[0]));
        await addToGallery(pictures[i], settings, result);
      }
      setProgress(1, `Done: ${images} image${images === 1 ? "" : "s"} in ${seconds} s`);
      return;
    }
    for await (const { event, data } of readEvents(response)) {
      const seconds = ((performance.now() - job.started) / 1000).toFixed(1);
      if (event === "localdiffusion.progress") {
        job.step = data.step;
        job.total = data.total_steps;
        setProgress(data.step / data.total_steps, `Step ${data.step} / ${data.total_steps} · ${seconds} s`);
      } else if (event.endsWith(".partial_image")) { // image_generation.* or, for edits, image_edit.*
        showOnStage("data:image/png;base64," + data.b64_json, request.width, state.models.find((m) => m.id === settings.model)?.preview_decoder || "VAE");
      } else if (event.endsWith(".completed")) {
        images++;
        showOnStage("data:image/png;base64," + data.b64_json, request.width);
        await addToGallery(data.b64_json, settings, data);
        // What the server did differently from what was asked (a size far above native, a prompt cut at 75 tokens).
        const warnings = (data.warnings || []).join(" ");
        setProgress(1, `Done: ${images} image${images === 1 ? "" : "s"} in ${seconds} s · seed ${data.seed}${warnings ? " · ⚠ " + warnings : ""}`);
      } else if (event === "error") {
        throw Object.assign(new Error(data.error?.message || "The generation failed."), { code: data.error?.code });
      }
    }
  } catch (err) {
    // The server ends a cancelled job with 409 "cancelled" (it was waiting) or "interrupted" (it was running).
    if (job.cancelled || err.name === "AbortError" || err.code === "cancelled") setProgress(0, "Cancelled.");
    else {
      setProgress(0, "Failed.");
      showError(err.message);
    }
  } finally {
    jobs.splice(jobs.indexOf(job), 1);
    renderQueue();
    if (jobs.length === 0) {
      clearInterval(queueTimer);
      queueTimer = null;
    }
    pollHealth();
  }
}

async function cancelJob(job) {
  job.cancelled = true;
  job.status = "cancelling";
  renderQueue();
  try {
    const response = await api("/v1/queue/" + encodeURIComponent(job.id), { method: "DELETE" });
    // 404: the server has not seen it yet (still uploading) or it just ended; dropping the request settles both.
    if (!response.ok) job.controller.abort();
  } catch {
    job.controller.abort();
  }
}

$("cancel").addEventListener("click", () => [...jobs].forEach(cancelJob));

async function pollQueue() {
  if (jobs.length === 0) return;
  try {
    const queue = await (await api("/v1/queue")).json();
    for (const job of jobs) {
      if (job.status === "cancelling") continue;
      const running = queue.running.find((r) => r.id === job.id);
      const waiting = queue.waiting.find((w) => w.id === job.id);
      if (running) {
        job.status = "running";
        job.step = running.step;
        job.total = running.total_steps;
      } else if (waiting) {
        job.status = "waiting";
        job.position = waiting.position;
      }
    }
    renderQueue();
  } catch {
    // the next poll tries again; the jobs' own requests report real failures
  }
}

function describeJob(job) {
  switch (job.status) {
    case "waiting": return `Waiting · number ${job.position} in the server's queue`;
    case "running": return `Running · step ${job.step} of ${job.total}`;
    case "cancelling": return "Cancelling…";
    default: return "Sending…";
  }
}

function renderQueue() {
  $("queue").hidden = jobs.length === 0;
  $("cancel").hidden = jobs.length === 0;
  const list = $("queue-list");
  // Reuse items so a focused cancel button keeps its focus across polls.
  const items = new Map([...list.children].map((li) => [li.dataset.job, li]));
  const rows = jobs.map((job) => {
    let li = items.get(job.id);
    if (!li) {
      li = document.createElement("li");
      li.dataset.job = job.id;
      const text = document.createElement("div");
      text.className = "queue-text";
      const prompt = document.createElement("span");
      prompt.className = "queue-prompt";
      const status = document.createElement("span");
      status.className = "queue-status";
      text.append(prompt, status);
      const cancel = document.createElement("button");
      cancel.type = "button";
      cancel.className = "secondary small queue-cancel";
      cancel.textContent = "Cancel";
      cancel.addEventListener("click", () => cancelJob(job));
      li.append(text, cancel);
    }
    const label = job.request.label ? `${job.request.label}: ${job.settings.prompt}` : job.settings.prompt;
    li.querySelector(".queue-prompt").textContent = label;
    li.querySelector(".queue-status").textContent = describeJob(job);
    li.dataset.status = job.status;
    const cancel = li.querySelector(".queue-cancel");
    cancel.disabled = job.status === "cancelling";
    cancel.setAttribute("aria-label", `Cancel: ${label}`);
    return li;
  });
  for (const [id, li] of items) if (!jobs.some((j) => j.id === id)) li.remove();
  rows.forEach((li, i) => {
    if (list.children[i] !== li) list.insertBefore(li, list.children[i] || null);
  });
}

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
  if (settings.hires) return hiresRequest(settings);
  const body = { ...commonFields(settings), size: `${settings.width}x${settings.height}` };
  const unit = controlNetUnit();
  if (unit) body.controlnets = [unit];
  return { path: "/v1/images/generations", body: JSON.stringify(body), width: settings.width };
}

// The hires fix is A1111's (enable_hr), so it goes to /sdapi/v1/txt2img: one JSON answer, no streamed steps.
function hiresRequest(settings) {
  const h = settings.hires;
  const body = {
    prompt: settings.prompt,
    negative_prompt: settings.negative_prompt,
    steps: settings.steps,
    cfg_scale: settings.guidance_scale,
    width: settings.width,
    height: settings.height,
    batch_size: settings.n,
    seed: settings.seed ?? -1,
    enable_hr: true,
    hr_scale: h.scale,
    hr_upscaler: h.upscaler,
    hr_second_pass_steps: h.steps,
    denoising_strength: h.strength,
    override_settings: { sd_model_checkpoint: settings.model },
  };
  if (settings.scheduler) body.sampler_name = settings.scheduler;
  return { path: "/sdapi/v1/txt2img", body: JSON.stringify(body), width: Math.floor(settings.width * h.scale), a1111: true };
}

// A PNG's size from its IHDR chunk (bytes 16–23), without decoding it.
function pngSize(b64) {
  const bytes = Uint8Array.from(atob(b64.slice(0, 44)), (c) => c.charCodeAt(0));
  const view = new DataView(bytes.buffer);
  return `${view.getUint32(16)}x${view.getUint32(20)}`;
}

// Upscale: the picture through /sdapi/v1/extra-single-image (A1111's extras) at 2×, added to the history as a new picture.
function startUpscale(b64, settings, result) {
  const upscaler = $("upscaler").value;
  if (!upscaler) {
    showError("This server lists no upscaler.");
    return;
  }
  const body = { image: b64, resize_mode: 0, upscaling_resize: 2, upscaler_1: upscaler };
  const [w] = String(result.size).split("x").map(Number);
  const upscaled = { ...settings, upscaled: upscaler };
  runJob(upscaled, { path: "/sdapi/v1/extra-single-image", body: JSON.stringify(body), width: w * 2, label: "Upscale", extras: { seed: result.seed, scheduler: result.scheduler, parameters: result.parameters } });
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

// --- PNG settings: a dropped or chosen PNG's parameters, read by the server's /sdapi/v1/png-info. ---
let pngSettings = null;

function readAsDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function readPngSettings(file) {
  if (!file) return;
  try {
    const image = await readAsDataUrl(file);
    const response = await api("/sdapi/v1/png-info", { method: "POST", body: JSON.stringify({ image }) });
    const info = await response.json();
    if (!response.ok) throw new Error(info?.error?.message || `HTTP ${response.status}`);
    showPngSettings(file.name, info.parameters, info.info !== "");
    showError("");
  } catch (e) {
    showError(`${file.name}: ${e.message}`);
  }
}

// The parsed infotext as the form's settings (A1111's keys; sizes come split into Size-1 and Size-2).
function settingsFromInfotext(p) {
  const s = { prompt: p["Prompt"] ?? "", negative_prompt: p["Negative prompt"] ?? "" };
  if (typeof p["Steps"] === "number") s.steps = Math.min(1000, Math.max(1, p["Steps"]));
  if (typeof p["CFG scale"] === "number") s.guidance_scale = p["CFG scale"];
  if (typeof p["Seed"] === "number") s.seed = p["Seed"];
  if (typeof p["Size-1"] === "number") s.width = p["Size-1"];
  if (typeof p["Size-2"] === "number") s.height = p["Size-2"];
  if (p["Sampler"] !== undefined) s.scheduler = String(p["Sampler"]);
  if (p["Model"] !== undefined) s.model = String(p["Model"]);
  if (typeof p["Denoising strength"] === "number") s.strength = p["Denoising strength"];
  return s;
}

function showPngSettings(name, parameters, found) {
  pngSettings = found ? settingsFromInfotext(parameters) : null;
  $("png-info-name").textContent = name;
  const rows = [];
  if (found) {
    for (const [key, value] of Object.entries(parameters)) {
      if (value === "" && key !== "Prompt") continue;
      // A1111 splits sizes into Key-1 and Key-2; shown whole again.
      if (key.endsWith("-2") && (key.slice(0, -2) + "-1") in parameters) continue;
      const whole = key.endsWith("-1") && (key.slice(0, -2) + "-2") in parameters;
      const dt = document.createElement("dt");
      dt.textContent = whole ? key.slice(0, -2) : key;
      const dd = document.createElement("dd");
      dd.textContent = whole ? `${value}×${parameters[key.slice(0, -2) + "-2"]}` : String(value);
      rows.push(dt, dd);
    }
  }
  $("png-info-list").replaceChildren(...rows);
  $("png-info-list").hidden = !found;
  $("png-info-empty").hidden = found;
  $("png-info-apply").hidden = !found;
  const panel = $("png-info");
  panel.hidden = false;
  panel.scrollIntoView({ block: "nearest" });
  (found ? $("png-info-apply") : $("png-info-close")).focus();
}

$("png-info-apply").addEventListener("click", () => {
  if (!pngSettings) return;
  applySettings({ ...pngSettings, mode: "text" });
  $("png-info").hidden = true;
});
$("png-info-close").addEventListener("click", () => {
  $("png-info").hidden = true;
  $("info-open").focus();
});
$("info-open").addEventListener("click", () => $("info-file").click());
$("info-file").addEventListener("change", (e) => {
  readPngSettings(e.target.files[0]);
  e.target.value = "";
});

// A file dropped anywhere but the image-to-image editor is read for its settings.
let dragDepth = 0;
const carriesFiles = (e) => [...(e.dataTransfer?.types || [])].includes("Files");
document.addEventListener("dragenter", (e) => {
  if (!carriesFiles(e)) return;
  dragDepth++;
  // Over the editor the drop is a picture to edit: no overlay there (it lets pointer events through, so drops reach the editor).
  $("drop-overlay").hidden = Boolean(e.target.closest?.("#editor"));
});
document.addEventListener("dragleave", () => {
  if (--dragDepth <= 0) {
    dragDepth = 0;
    $("drop-overlay").hidden = true;
  }
});
document.addEventListener("dragover", (e) => {
  if (carriesFiles(e)) e.preventDefault();
});
document.addEventListener("drop", (e) => {
  dragDepth = 0;
  $("drop-overlay").hidden = true;
  if (!carriesFiles(e)) return;
  e.preventDefault();
  readPngSettings(e.dataTransfer.files[0]);
});

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
    e.stopPropagation();
    $("dropzone").classList.add("over");
  });
  target.addEventListener("dragleave", () => $("dropzone").classList.remove("over"));
  target.addEventListener("drop", (e) => {
    e.preventDefault();
    e.stopPropagation(); // a picture to edit, not one to read settings from
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
