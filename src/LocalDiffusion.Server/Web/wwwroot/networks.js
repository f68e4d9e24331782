// The "extra networks" picker, as AUTOMATIC1111's: the server's LoRAs (/sdapi/v1/loras) and textual-inversion embeddings
// (/sdapi/v1/embeddings) as chips that put <lora:NAME:WEIGHT> or the embedding's trigger word into the prompt or the
// negative prompt; a second click takes it out again. Hidden when the server has neither. Kept apart from app.js: it only
// reads the two listings and edits the two textareas, so the form sends the tags like typed text.
"use strict";

(() => {
  const root = document.getElementById("networks");
  if (!root) return;
  const picker = { kind: "lora", target: "prompt", loras: [], embeddings: [] };

  // The page's key (app.js keeps it in localStorage), so a server started with --api-key answers these too.
  async function getJson(path) {
    const key = localStorage.getItem("localdiffusion.key");
    const response = await fetch(path, { headers: key ? { Authorization: "Bearer " + key } : {} });
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    return response.json();
  }

  function element(tag, props = {}, ...children) {
    const el = document.createElement(tag);
    for (const [key, value] of Object.entries(props)) {
      if (key === "role") el.setAttribute("role", value);
      else if (key === "ariaLabel") el.setAttribute("aria-label", value);
      else el[key] = value;
    }
    el.append(...children);
    return el;
  }

  root.append(
    element("div", { className: "networks-head" },
      element("span", { className: "label", textContent: "Extra networks" }),
      element("div", { className: "segmented", role: "group", ariaLabel: "Kind" },
        element("button", { type: "button", id: "networks-lora", textContent: "LoRA" }),
        element("button", { type: "button", id: "networks-embeddings", textContent: "Embeddings" }))),
    element("div", { className: "networks-options" },
      element("div", { className: "segmented", role: "group", ariaLabel: "Insert into" },
        element("button", { type: "button", id: "networks-to-prompt", textContent: "Prompt" }),
        element("button", { type: "button", id: "networks-to-negative", textContent: "Negative" })),
      element("label", { className: "networks-weight", id: "networks-weight-field", title: "The LoRA's weight in the tag it inserts" },
        element("span", { textContent: "Weight" }),
        element("input", { type: "range", id: "networks-weight", min: "-2", max: "2", step: "0.05", value: "1", ariaLabel: "LoRA weight" }),
        element("output", { id: "networks-weight-out", textContent: "1" }))),
    element("input", { type: "search", id: "networks-filter", placeholder: "Filter", ariaLabel: "Filter the list" }),
    element("div", { className: "networks-list", id: "networks-list", role: "group", ariaLabel: "Click to insert or remove" }));

  const $ = (id) => document.getElementById(id);
  const textarea = () => $(picker.target === "negative" ? "negative_prompt" : "prompt");
  const weight = () => Number($("networks-weight").value);
  const escapeRegExp = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  // A LoRA's tag in the text, whatever weight it was written with.
  const loraTag = (name) => new RegExp(`\\s*<lora:${escapeRegExp(name)}(?::[^<>]*)?>`, "g");
  // An embedding's trigger as a whole word (the engine matches the file's name between word boundaries too).
  const trigger = (name) => new RegExp(`(^|[\\s,(\\[])${escapeRegExp(name)}(?=$|[\\s,)\\]:])`);

  const present = (name) => picker.kind === "lora" ? loraTag(name).test(textarea().value) : trigger(name).test(textarea().value);

  function toggle(name) {
    const box = textarea();
    let text = box.value;
    if (picker.kind === "lora") {
      text = loraTag(name).test(text) ? text.replace(loraTag(name), "").trim() : append(text, `<lora:${name}:${formatWeight(weight())}>`);
    } else {
      const match = trigger(name).exec(text);
      text = match ? (text.slice(0, match.index) + match[1] + text.slice(match.index + match[0].length)).replace(/\s{2,}/g, " ").trim() : append(text, name);
    }
    box.value = text;
    // app.js and the browser hear it as typing (the form reads the value when it generates).
    box.dispatchEvent(new Event("input", { bubbles: true }));
    render();
  }

  const append = (text, word) => (text.trim() ? text.replace(/\s+$/, "") + " " : "") + word;
  const formatWeight = (w) => String(Math.round(w * 100) / 100);

  function render() {
    const names = picker.kind === "lora" ? picker.loras : picker.embeddings;
    const filter = $("networks-filter").value.trim().toLowerCase();
    $("networks-list").replaceChildren(...names.filter((n) => n.toLowerCase().includes(filter)).map((name) => {
      const chip = element("button", { type: "button", className: "chip", textContent: name, title: picker.kind === "lora" ? `<lora:${name}:${formatWeight(weight())}>` : name });
      chip.dataset.name = name;
      chip.setAttribute("aria-pressed", String(present(name)));
      chip.addEventListener("click", () => toggle(name));
      return chip;
    }));
    $("networks-lora").setAttribute("aria-pressed", String(picker.kind === "lora"));
    $("networks-embeddings").setAttribute("aria-pressed", String(picker.kind === "embeddings"));
    $("networks-to-prompt").setAttribute("aria-pressed", String(picker.target === "prompt"));
    $("networks-to-negative").setAttribute("aria-pressed", String(picker.target === "negative"));
    $("networks-weight-field").hidden = picker.kind !== "lora";
  }

  function choose(kind) {
    picker.kind = kind;
    render();
  }

  $("networks-lora").addEventListener("click", () => choose("lora"));
  $("networks-embeddings").addEventListener("click", () => choose("embeddings"));
  $("networks-to-prompt").addEventListener("click", () => { picker.target = "prompt"; render(); });
  $("networks-to-negative").addEventListener("click", () => { picker.target = "negative"; render(); });
  $("networks-weight").addEventListener("input", () => { $("networks-weight-out").textContent = formatWeight(weight()); render(); });
  $("networks-filter").addEventListener("input", render);
  // The picker sits in the generation form: Enter in the filter must not generate.
  $("networks-filter").addEventListener("keydown", (e) => { if (e.key === "Enter") e.preventDefault(); });
  for (const id of ["prompt", "negative_prompt"]) $(id).addEventListener("input", render);

  // Each listing on its own: a server with LoRAs but no embeddings (or a failing listing) still offers the other.
  async function load() {
    const [loras, embeddings] = await Promise.allSettled([getJson("/sdapi/v1/loras"), getJson("/sdapi/v1/embeddings")]);
    picker.loras = loras.status === "fulfilled" ? loras.value.map((l) => l.name) : [];
    // Only the embeddings that work with the model; skipped ones (another encoder's width) would be refused.
    picker.embeddings = embeddings.status === "fulfilled" ? Object.keys(embeddings.value.loaded || {}) : [];
    $("networks-lora").hidden = picker.loras.length === 0;
    $("networks-embeddings").hidden = picker.embeddings.length === 0;
    if (picker.kind === "lora" && picker.loras.length === 0) picker.kind = "embeddings";
    if (picker.kind === "embeddings" && picker.embeddings.length === 0) picker.kind = "lora";
    root.hidden = picker.loras.length === 0 && picker.embeddings.length === 0;
    render();
    root.dataset.state = "loaded";
  }

  load();
  // A key entered later (the server asked for one) may open listings that were refused.
  document.getElementById("key-dialog")?.addEventListener("close", load);
})();
