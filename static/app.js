/**
 * The page's one entry module. Shared bits (theme toggle, copy buttons) run everywhere; the
 * studio runs where #studio exists. It talks to the server only through the documented
 * Socket.IO events (caption -> queued/started/step/done/failed) and the REST routes.
 *
 * For tests and embedders it dispatches `studio:started` ({ objects }) once the boxes of the
 * detected objects are drawn, `studio:step` ({ index, word, shown, object, beams }) after drawing
 * each streamed step and `studio:done` ({ caption, ms, prefix, beam }) on document.
 *
 * Everything it shows about the model's choices (confidence, alternatives, beams) comes from the
 * events: the page adds no model logic. "What if" is a new caption job with a `prefix`.
 */
import { io } from "/socket.io/socket.io.esm.min.js";
import { COLORMAPS, paintRgba, upsampleGrid } from "./heatmap.js";
import { clampBox, objectColor, objectLabel } from "./objects.js";

const $ = (id) => document.getElementById(id);

initTheme();
initCopyButtons();
if ($("studio")) initStudio(JSON.parse($("studio-config").textContent));

function initTheme() {
  const btn = $("theme-toggle");
  if (!btn) return;
  const dark = () => document.documentElement.dataset.theme === "dark"; // theme.js always sets it
  btn.setAttribute("aria-pressed", String(dark()));
  btn.addEventListener("click", () => {
    const next = dark() ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    btn.setAttribute("aria-pressed", String(next === "dark"));
    try {
      localStorage.setItem("studio-theme", next);
    } catch {
      // Not persisted; fine.
    }
  });
}

function initCopyButtons() {
  for (const btn of document.querySelectorAll("[data-copy]")) {
    btn.addEventListener("click", async () => {
      const text = $(btn.dataset.copy)?.textContent ?? "";
      try {
        await navigator.clipboard.writeText(text);
        btn.textContent = "Copied";
      } catch {
        btn.textContent = "Select and copy";
      }
      setTimeout(() => (btn.textContent = "Copy"), 1600);
    });
  }
}

function initStudio(cfg) {
  const el = {
    dropzone: $("dropzone"), file: $("file"), empty: $("drop-empty"), stage: $("stage"), photo: $("photo"),
    heat: $("heat"), stageWord: $("stage-word"), options: $("options"), beam: $("beam"), maxlen: $("maxlen"),
    maxlenOut: $("maxlen-out"), run: $("run"), clear: $("clear"), status: $("status"), statusText: $("status-text"),
    captionBox: $("caption-box"), caption: $("caption"), live: $("caption-live"), opacity: $("opacity"),
    opacityOut: $("opacity-out"), colormap: $("colormap"), legend: $("legend-bar"), replay: $("replay"),
    download: $("download"), tTotal: $("t-total"), tFirst: $("t-first"), tWait: $("t-wait"), tMode: $("t-mode"),
    history: $("history"), historySection: $("history-section"), hint: $("caption-hint"),
    objects: $("objects"), showObjects: $("show-objects"), objectList: $("object-list"),
    confidence: $("confidence"), logprob: $("logprob"), explain: $("explain"), altIndex: $("alt-index"),
    alternatives: $("alternatives"), undo: $("undo"), whatif: $("whatif"), whatifWord: $("whatif-word"),
    whatifError: $("whatif-error"), beamsSection: $("beams-section"), beamNote: $("beam-note"), beams: $("beams"),
    compareRun: $("compare-run"), compareSection: $("compare-section"), compare: $("compare"),
  };
  const ctx = el.heat.getContext("2d");
  // undo: finished jobs a "what if" replaced (newest last); compare: the latest greedy and beam
  // results on this photo; alt: the word whose alternatives are listed, and the active option.
  const state = { file: null, url: null, job: null, selected: -1, replay: null, lastAlpha: null, undo: [], compare: { greedy: null, beam: null }, alt: { word: -1, active: 0 } };

  // tryAllTransports: a refused WebSocket handshake hides its status; the polling retry shows it (401, 429).
  const socket = io({ transports: ["websocket", "polling"], tryAllTransports: true });
  socket.on("connect_error", (err) => {
    // The server judges the handshake before any session exists, so a refusal is an HTTP status,
    // which the polling transport reports (a browser's WebSocket hides it).
    const status = typeof err?.description === "number" ? err.description : 0;
    const why = err?.data?.message ?? { 401: "this studio needs its link or credentials", 403: "refused by the server", 429: "too many requests from your address; wait a minute" }[status];
    if (why) setStatus("error", `Not connected: ${why}. Reload the page to try again.`);
    else if (state.job && !state.job.done) setStatus("error", "Cannot reach the server; retrying…");
  });
  socket.on("disconnect", () => {
    if (state.job && !state.job.done && !state.job.failed) fail({ message: "The connection dropped; press Caption to try again." });
  });

  // ----- status, timings -----
  function setStatus(kind, text) {
    el.status.className = `status ${kind}`;
    el.statusText.textContent = text;
  }
  const fmtMs = (ms) => (ms == null ? "–" : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`);

  // ----- heatmap -----
  /** Scales the photo (up or down) to fit the drop zone; the canvas covers exactly the photo. */
  function layoutStage() {
    const nw = el.photo.naturalWidth, nh = el.photo.naturalHeight;
    if (!nw || !nh || el.stage.hidden || el.stage.classList.contains("no-preview")) return;
    const cs = getComputedStyle(el.dropzone);
    const availW = el.dropzone.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
    const availH = Math.min(window.innerHeight * 0.62, 560);
    const s = Math.min(availW / nw, availH / nh);
    el.photo.style.width = `${Math.floor(nw * s)}px`;
    el.photo.style.height = `${Math.floor(nh * s)}px`;
  }
  new ResizeObserver(() => layoutStage()).observe(el.dropzone);
  window.addEventListener("resize", layoutStage);

  function sizeCanvas() {
    const w = el.photo.naturalWidth || 1, h = el.photo.naturalHeight || 1;
    const W = 320;
    el.heat.width = W;
    el.heat.height = Math.max(1, Math.round((W * h) / w));
  }
  function drawHeat(alpha, word) {
    state.lastAlpha = alpha;
    const [gh, gw] = state.job?.grid ?? cfg.grid;
    const W = el.heat.width, H = el.heat.height;
    if (!alpha) {
      ctx.clearRect(0, 0, W, H);
      el.stageWord.textContent = "";
      return;
    }
    const values = upsampleGrid(alpha, gh, gw, W, H);
    const img = ctx.createImageData(W, H);
    paintRgba(values, img.data, { colormap: el.colormap.value, opacity: 1 });
    ctx.putImageData(img, 0, 0);
    el.stageWord.textContent = word ?? "";
  }
  function applyOpacity() {
    el.heat.style.opacity = String(el.opacity.value / 100);
    el.opacityOut.textContent = `${el.opacity.value}%`;
  }
  function applyColormap() {
    const stops = COLORMAPS[el.colormap.value] ?? COLORMAPS.inferno;
    el.legend.style.background = `linear-gradient(90deg, ${stops.join(", ")})`;
    if (state.lastAlpha) drawHeat(state.lastAlpha, el.stageWord.textContent);
  }

  // ----- detected objects -----
  /** Draws one labelled box per object over the photo, and lists them under the caption. */
  function renderObjects(objects) {
    el.objects.replaceChildren();
    el.objectList.replaceChildren();
    el.objects.classList.remove("has-highlight");
    (objects ?? []).forEach((o, i) => {
      const b = clampBox(o.box);
      if (!b) return;
      const label = objectLabel(o);
      const box = document.createElement("div");
      box.className = "object-box";
      box.dataset.index = String(i);
      box.setAttribute("role", "img");
      box.setAttribute("aria-label", label);
      box.style.setProperty("--c", objectColor(i));
      box.style.left = `${b[0] * 100}%`;
      box.style.top = `${b[1] * 100}%`;
      box.style.width = `${b[2] * 100}%`;
      box.style.height = `${b[3] * 100}%`;
      // The label goes above the box, or inside it when the box touches the photo's top.
      if (b[1] < 0.08) box.classList.add("label-inside");
      // Boxes on the right half anchor their label on the right, so it stays on the photo.
      if (b[0] > 0.5) box.classList.add("label-right");
      const tag = document.createElement("span");
      tag.className = "object-label";
      tag.setAttribute("aria-hidden", "true");
      tag.textContent = label;
      box.append(tag);
      // Least confident first in the DOM, so the most confident box is painted on top.
      el.objects.prepend(box);
      const li = document.createElement("li");
      li.dataset.index = String(i);
      li.style.setProperty("--c", objectColor(i));
      li.textContent = label;
      el.objectList.append(li);
    });
    if (objects && objects.length === 0) {
      const li = document.createElement("li");
      li.className = "none";
      li.textContent = "No objects detected";
      el.objectList.append(li);
    }
  }
  /** Highlights the box of object `k` (and dims the others); no highlight for undefined. */
  function highlightObject(k) {
    const on = Number.isInteger(k) && el.objects.querySelector(`.object-box[data-index="${k}"]`) !== null;
    el.objects.classList.toggle("has-highlight", on);
    for (const node of [...el.objects.children, ...el.objectList.children]) {
      node.classList.toggle("highlight", on && node.dataset.index === String(k));
    }
  }
  function applyShowObjects() {
    el.objects.hidden = !el.showObjects.checked;
  }
  try {
    const saved = localStorage.getItem("studio-objects");
    if (saved === "off" || saved === "on") el.showObjects.checked = saved === "on";
  } catch {
    // Storage may be blocked: boxes stay on.
  }
  applyShowObjects();
  el.showObjects.addEventListener("change", () => {
    applyShowObjects();
    try {
      localStorage.setItem("studio-objects", el.showObjects.checked ? "on" : "off");
    } catch {
      // Not persisted; fine.
    }
  });

  // ----- words -----
  function chip(i) {
    let c = el.caption.children[i];
    if (!c) {
      c = document.createElement("button");
      c.type = "button";
      c.className = "word";
      c.dataset.index = String(i);
      el.caption.append(c);
    }
    return c;
  }
  /** Shows `words` as chips; `current` marks the newest; returns how many chips are visible. */
  function renderWords(words, { probs = [], objects = [], current = -1, animate = true } = {}) {
    el.captionBox.classList.toggle("has-words", words.length > 0);
    words.forEach((w, i) => {
      const c = chip(i);
      const isNew = c.dataset.word === undefined;
      if (c.dataset.word !== w) {
        if (!isNew && animate) restartAnimation(c, "revised");
        c.dataset.word = w;
        c.textContent = w;
        if (isNew && animate) restartAnimation(c, "fresh");
      }
      const named = state.job?.objects?.[objects[i]];
      if (named) {
        c.dataset.object = String(objects[i]);
        c.style.setProperty("--c", objectColor(objects[i]));
      } else {
        delete c.dataset.object;
        c.style.removeProperty("--c");
      }
      c.classList.toggle("names-object", Boolean(named));
      if (probs[i] != null) {
        c.style.setProperty("--p", String(probs[i]));
        c.title = named ? `p = ${probs[i].toFixed(2)} · ${objectLabel(named)}` : `p = ${probs[i].toFixed(2)}`;
        // The confidence is in the name too, not only in the bar's length and colour.
        c.setAttribute("aria-label", `${w}, ${pct(probs[i])} confident${named ? `, names ${objectLabel(named)}` : ""}`);
      } else c.removeAttribute("aria-label");
      c.classList.toggle("current", i === current);
      c.classList.remove("selected", "pending");
      if (!animate) c.classList.remove("fresh", "revised");
    });
    while (el.caption.children.length > words.length) el.caption.lastElementChild.remove();
    return words.length;
  }
  const pct = (p) => (p >= 0.995 ? "99%" : p < 0.01 ? "<1%" : `${Math.round(p * 100)}%`);
  function restartAnimation(c, cls) {
    c.classList.remove("fresh", "revised");
    void c.offsetWidth; // restart the CSS animation
    c.classList.add(cls);
  }
  function showWord(i, { sticky = false } = {}) {
    const job = state.job;
    if (!job?.done || !job.words[i]) return;
    if (sticky) state.selected = i;
    [...el.caption.children].forEach((c, k) => {
      c.classList.toggle("selected", k === i);
      c.classList.remove("current");
    });
    drawHeat(job.words[i].alpha, job.words[i].word);
    highlightObject(job.words[i].object);
    renderAlternatives(i, sticky);
  }

  // ----- alternatives and "what if" -----
  const sameWord = (a, b) => a === b || (["a", "an"].includes(a) && ["a", "an"].includes(b)); // the page shows "an" where the model said "a"
  /**
   * Lists the model's top words at position i as a listbox; picking one rewrites the caption from
   * there. A hover shows another word's list for a moment; only a new selection clears the typed word.
   */
  function renderAlternatives(i, sticky = false) {
    const w = state.job?.done ? state.job.words[i] : null;
    if (!w || !Array.isArray(w.top) || w.top.length === 0) {
      el.explain.hidden = true;
      return;
    }
    const changed = state.alt.word !== i;
    el.explain.hidden = false;
    el.altIndex.textContent = `${i + 1}, “${w.word}”`;
    const options = [...w.top];
    // A word grounding or a prefix put in may be outside the top 5: list it too, with its own probability.
    if (!options.some((c) => sameWord(c.word, w.word))) options.push({ word: w.word, prob: w.prob });
    el.alternatives.replaceChildren(...options.map((c, k) => {
      const li = document.createElement("li");
      const end = c.word === "<end>";
      const chosen = sameWord(c.word, w.word);
      li.id = `alt-${k}`;
      li.className = "alternative";
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", "false"); // follows the active option (setActiveAlternative)
      li.dataset.word = c.word;
      if (chosen) li.dataset.chosen = "true";
      if (end) li.setAttribute("aria-disabled", "true");
      li.style.setProperty("--p", String(c.prob));
      const word = document.createElement("span");
      word.className = "alt-word";
      word.textContent = end ? "(end here)" : c.word;
      const bar = document.createElement("span");
      bar.className = "alt-bar";
      bar.setAttribute("aria-hidden", "true");
      const p = document.createElement("span");
      p.className = "alt-p";
      p.textContent = pct(c.prob);
      li.append(word, bar, p);
      li.setAttribute("aria-label", `${end ? "end the caption here" : c.word}, ${pct(c.prob)}${chosen ? ", the caption's word" : end ? ", not available" : ""}`);
      return li;
    }));
    if (changed) {
      state.alt = { word: i, active: 0 };
      if (sticky) {
        el.whatifWord.value = "";
        el.whatifError.hidden = true;
      }
    }
    setActiveAlternative(Math.min(state.alt.active, options.length - 1));
  }
  function setActiveAlternative(k) {
    const opts = el.alternatives.children;
    if (!opts.length) return;
    state.alt.active = Math.max(0, Math.min(opts.length - 1, k));
    [...opts].forEach((o, j) => {
      o.classList.toggle("active", j === state.alt.active);
      o.setAttribute("aria-selected", String(j === state.alt.active));
    });
    el.alternatives.setAttribute("aria-activedescendant", opts[state.alt.active].id);
  }
  function chooseAlternative(li) {
    if (!li || li.getAttribute("aria-disabled") === "true" || li.dataset.chosen === "true") return;
    rewriteFrom(state.alt.word, [li.dataset.word], { refocus: el.alternatives.contains(document.activeElement) || document.activeElement === el.alternatives });
  }
  /** "What if": keeps the words before position i, forces `words` there, and lets the model write the rest. */
  function rewriteFrom(i, words, { refocus = false } = {}) {
    const job = state.job;
    if (!job?.done || !state.file || i < 0 || !words.length) return;
    start({ prefix: [...job.words.slice(0, i).map((w) => w.word), ...words], beam: job.beam, maxLen: job.maxLen, refocus });
  }
  el.alternatives.addEventListener("click", (e) => {
    const li = e.target.closest(".alternative");
    if (!li) return;
    setActiveAlternative([...el.alternatives.children].indexOf(li));
    chooseAlternative(li);
  });
  el.alternatives.addEventListener("keydown", (e) => {
    const n = el.alternatives.children.length;
    const k = { ArrowDown: state.alt.active + 1, ArrowRight: state.alt.active + 1, ArrowUp: state.alt.active - 1, ArrowLeft: state.alt.active - 1, Home: 0, End: n - 1 }[e.key];
    if (k !== undefined) setActiveAlternative(k);
    else if (e.key === "Enter" || e.key === " ") chooseAlternative(el.alternatives.children[state.alt.active]);
    else return;
    e.preventDefault();
  });
  el.whatif.addEventListener("submit", (e) => {
    e.preventDefault();
    const words = el.whatifWord.value.trim().split(/\s+/).filter(Boolean);
    if (!words.length) {
      showWhatifError("Type a word first.");
      return;
    }
    state.typed = el.whatifWord.value; // given back if the server refuses it
    rewriteFrom(state.alt.word, words);
  });
  function showWhatifError(message) {
    el.whatifError.textContent = message;
    el.whatifError.hidden = false;
  }
  el.undo.addEventListener("click", () => {
    const prev = state.undo.pop();
    if (!prev) return;
    if (state.job && !state.job.done) socket.emit("cancel");
    stopReplay();
    restore(prev);
    setStatus("done", "Back to the previous caption");
  });
  /** Shows a caption from the undo stack again, as it was. */
  function restore(job) {
    state.job = job;
    renderObjects(job.objects);
    showResult(job.result, job, { restored: true });
  }

  // ----- beams -----
  /** Lists every hypothesis of the beam search, best first; notes when the best one rewrote an earlier word. */
  function renderBeams(beams, job) {
    el.beamsSection.hidden = false;
    el.beams.replaceChildren(...beams.map((b) => {
      const li = document.createElement("li");
      li.classList.toggle("best", b.best);
      li.classList.toggle("ended", b.done);
      const text = document.createElement("span");
      text.className = "beam-words";
      text.textContent = b.words.join(" ") || "…";
      const score = document.createElement("span");
      score.className = "beam-score";
      score.textContent = b.logProb.toFixed(2);
      score.title = "log-probability";
      const tags = [b.best ? "best" : null, b.done ? "ended" : null].filter(Boolean);
      if (tags.length) {
        const tag = document.createElement("span");
        tag.className = "beam-tag";
        tag.textContent = tags.join(" · ");
        li.append(text, tag, score);
      } else li.append(text, score);
      li.setAttribute("aria-label", `${tags.length ? `${tags.join(", ")}: ` : ""}${b.words.join(" ")}, log-probability ${b.logProb.toFixed(2)}`);
      return li;
    }));
    job.beams = beams;
  }
  function noteRewrite(prev, next, job) {
    const n = Math.min(prev.length, next.length);
    for (let i = 0; i < n; i++) {
      if (!sameWord(prev[i], next[i])) { // not "a" becoming "an" before a new word
        job.rewrites = (job.rewrites ?? 0) + 1;
        el.beamNote.textContent = `Rewrote word ${i + 1}: “${prev[i]}” → “${next[i]}”`;
        restartAnimation(el.beamNote, "flash");
        return;
      }
    }
  }

  // ----- compare -----
  function renderCompare() {
    const { greedy, beam } = state.compare;
    el.compareSection.hidden = !(greedy && beam);
    const job = state.job;
    el.compareRun.disabled = !job?.done || !state.file || Boolean(greedy && beam);
    el.compareRun.textContent = !job?.done || (greedy && beam) ? "Compare greedy and beam" : job.beam === 1 ? `Compare with beam ${beamSize()}` : "Compare with greedy";
    if (!(greedy && beam)) return;
    el.compare.replaceChildren(...[greedy, beam].map((r) => {
      const card = document.createElement("figure");
      card.className = "compare-card";
      const head = document.createElement("figcaption");
      head.textContent = r.beam === 1 ? "Greedy" : `Beam ${r.beam}`;
      const cap = document.createElement("p");
      cap.className = "compare-caption";
      cap.textContent = r.caption || "(no words)";
      const meta = document.createElement("p");
      meta.className = "compare-meta";
      meta.textContent = `log p ${r.logProb.toFixed(2)} · ${(r.logProb / Math.max(1, r.words + 1)).toFixed(2)} per word · ${fmtMs(r.ms)}`;
      card.append(head, cap, meta);
      return card;
    }));
    const better = greedy.logProb === beam.logProb ? null : greedy.logProb > beam.logProb ? 0 : 1;
    if (better !== null) el.compare.children[better].classList.add("higher");
  }
  el.compareRun.addEventListener("click", () => {
    const job = state.job;
    if (!job?.done || !state.file) return;
    start({ beam: job.beam === 1 ? beamSize() : 1, maxLen: job.maxLen });
  });

  // Hover is for mice and pens; touch selects with a tap (click), and the mouse events a
  // browser makes up around taps must not move the selection elsewhere.
  el.caption.addEventListener("pointerover", (e) => {
    const c = e.target.closest(".word");
    if (c && e.pointerType !== "touch" && !state.replay) showWord(Number(c.dataset.index));
  });
  el.caption.addEventListener("pointerleave", (e) => {
    if (e.pointerType !== "touch" && state.job?.done && !state.replay && state.selected >= 0) showWord(state.selected);
  });
  el.caption.addEventListener("focusin", (e) => {
    const c = e.target.closest(".word");
    if (c && !state.replay) showWord(Number(c.dataset.index), { sticky: true });
  });
  el.caption.addEventListener("click", (e) => {
    const c = e.target.closest(".word");
    if (!c) return;
    stopReplay();
    showWord(Number(c.dataset.index), { sticky: true });
  });
  el.caption.addEventListener("keydown", (e) => {
    const c = e.target.closest(".word");
    if (!c || !["ArrowLeft", "ArrowRight", "Home", "End"].includes(e.key)) return;
    const n = el.caption.children.length, i = Number(c.dataset.index);
    const next = e.key === "Home" ? 0 : e.key === "End" ? n - 1 : Math.min(n - 1, Math.max(0, i + (e.key === "ArrowRight" ? 1 : -1)));
    el.caption.children[next]?.focus();
    e.preventDefault();
  });

  // ----- replay -----
  function stopReplay() {
    if (!state.replay) return;
    clearInterval(state.replay);
    state.replay = null;
    el.replay.lastChild.textContent = " Replay";
    [...el.caption.children].forEach((c) => c.classList.remove("pending"));
  }
  function startReplay() {
    const job = state.job;
    if (!job?.done || job.words.length === 0) return;
    stopReplay();
    let i = 0;
    const chips = [...el.caption.children];
    chips.forEach((c) => c.classList.add("pending"));
    const tick = () => {
      if (i >= job.words.length) {
        stopReplay();
        showWord(state.selected >= 0 ? state.selected : job.words.length - 1, { sticky: true });
        return;
      }
      chips[i].classList.remove("pending");
      restartAnimation(chips[i], "fresh");
      chips.forEach((c, k) => c.classList.toggle("current", k === i));
      drawHeat(job.words[i].alpha, job.words[i].word);
      highlightObject(job.words[i].object);
      i++;
    };
    el.replay.lastChild.textContent = " Stop";
    tick();
    state.replay = setInterval(tick, 480);
  }
  el.replay.addEventListener("click", () => (state.replay ? stopReplay() : startReplay()));

  // ----- choosing an image -----
  function pick(file) {
    if (!file) return;
    if (file.size > cfg.uploadLimit) {
      return fail({ message: `That file is ${(file.size / 1048576).toFixed(1)} MB; the limit is ${(cfg.uploadLimit / 1048576).toFixed(0)} MB.` });
    }
    if (file.type && !file.type.startsWith("image/")) return fail({ message: "That file is not an image." });
    state.file = file;
    state.undo = [];
    state.compare = { greedy: null, beam: null };
    if (state.url) URL.revokeObjectURL(state.url);
    state.url = URL.createObjectURL(file);
    el.stage.classList.remove("no-preview");
    el.stage.hidden = false;
    el.empty.hidden = true;
    el.dropzone.classList.add("has-image");
    el.clear.disabled = false;
    el.run.disabled = false;
    ctx.clearRect(0, 0, el.heat.width, el.heat.height);
    el.photo.onload = () => {
      sizeCanvas();
      layoutStage();
      if (state.lastAlpha) drawHeat(state.lastAlpha, el.stageWord.textContent);
    };
    el.photo.onerror = () => {
      // The browser cannot show this format (e.g. TIFF); the server can still caption it.
      el.stage.classList.add("no-preview");
      el.heat.width = 320;
      el.heat.height = 320;
    };
    el.photo.src = state.url;
    for (const ex of document.querySelectorAll(".example")) ex.classList.toggle("current", ex.dataset.name === file.name);
    start();
  }

  el.dropzone.addEventListener("click", (e) => {
    if (e.target === el.file) return; // the picker's own click, bubbling up
    if (!el.dropzone.classList.contains("has-image") || e.target === el.dropzone) el.file.click();
  });
  el.dropzone.addEventListener("keydown", (e) => {
    if (e.target === el.dropzone && (e.key === "Enter" || e.key === " ")) {
      e.preventDefault();
      el.file.click();
    }
  });
  el.file.addEventListener("change", () => {
    pick(el.file.files?.[0]);
    el.file.value = "";
  });
  for (const type of ["dragenter", "dragover"]) {
    document.addEventListener(type, (e) => {
      if (![...(e.dataTransfer?.types ?? [])].includes("Files")) return;
      e.preventDefault();
      el.dropzone.classList.add("dragging");
    });
  }
  document.addEventListener("dragleave", (e) => {
    if (e.relatedTarget === null) el.dropzone.classList.remove("dragging");
  });
  document.addEventListener("drop", (e) => {
    if (!e.dataTransfer?.files?.length) return;
    e.preventDefault();
    el.dropzone.classList.remove("dragging");
    pick(e.dataTransfer.files[0]);
  });
  document.addEventListener("paste", (e) => {
    const item = [...(e.clipboardData?.items ?? [])].find((x) => x.kind === "file" && x.type.startsWith("image/"));
    if (!item) return;
    e.preventDefault();
    const f = item.getAsFile();
    pick(new File([f], f.name || "pasted-image", { type: f.type }));
  });
  for (const ex of document.querySelectorAll(".example")) {
    ex.addEventListener("click", async () => {
      try {
        const res = await fetch(ex.dataset.src);
        if (!res.ok) throw new Error(String(res.status));
        const blob = await res.blob();
        pick(new File([blob], ex.dataset.name, { type: blob.type }));
      } catch {
        fail({ message: "Could not load that example." });
      }
    });
  }

  // ----- options -----
  const beamMode = () => document.querySelector('input[name="mode"]:checked')?.value === "beam";
  const syncMode = () => (el.beam.disabled = !beamMode());
  for (const r of document.querySelectorAll('input[name="mode"]')) r.addEventListener("change", syncMode);
  syncMode();
  el.maxlen.addEventListener("input", () => (el.maxlenOut.textContent = el.maxlen.value));
  el.opacity.addEventListener("input", applyOpacity);
  el.colormap.addEventListener("change", applyColormap);
  applyOpacity();
  applyColormap();
  el.options.addEventListener("submit", (e) => {
    e.preventDefault();
    if (state.file) start();
  });
  el.clear.addEventListener("click", (e) => {
    e.stopPropagation();
    socket.emit("cancel");
    stopReplay();
    state.job = null;
    state.file = null;
    state.selected = -1;
    state.undo = [];
    state.compare = { greedy: null, beam: null };
    el.compareSection.hidden = true;
    if (state.url) URL.revokeObjectURL(state.url);
    state.url = null;
    el.photo.removeAttribute("src");
    el.photo.style.width = el.photo.style.height = "";
    el.stage.hidden = true;
    el.empty.hidden = false;
    el.dropzone.classList.remove("has-image");
    el.clear.disabled = true;
    el.run.disabled = true;
    drawHeat(null);
    renderWords([]);
    renderObjects(null);
    resetResult();
    setStatus("", "Waiting for a photo");
  });

  function resetResult() {
    el.explain.hidden = true;
    el.beamsSection.hidden = true;
    el.beams.replaceChildren();
    el.beamNote.textContent = "";
    el.confidence.hidden = true;
    el.logprob.textContent = "";
    el.undo.disabled = true;
    el.compareRun.disabled = true;
    el.replay.disabled = true;
    el.download.classList.add("disabled");
    el.download.setAttribute("aria-disabled", "true");
    el.download.tabIndex = -1;
    el.download.removeAttribute("href");
    el.caption.classList.remove("interactive");
    el.hint.hidden = true;
    for (const t of [el.tTotal, el.tFirst, el.tWait]) t.textContent = "–";
  }

  // ----- captioning -----
  const beamSize = () => Math.min(cfg.maxBeam, Math.max(2, Math.round(Number(el.beam.value) || 2)));
  const formMaxLen = () => Math.min(cfg.maxLenLimit, Math.max(1, Math.round(Number(el.maxlen.value) || cfg.maxLen)));
  /** Starts a caption of the current photo: the form's settings, or a "what if" prefix / the other mode for comparing. */
  async function start({ prefix = null, beam = beamMode() ? beamSize() : 1, maxLen = formMaxLen(), refocus = false } = {}) {
    stopReplay();
    el.beam.value = String(beamSize());
    // Undo returns to the caption this one replaces (a what-if, a comparison or a re-run of this photo).
    const replaces = state.job?.done && state.job.file === state.file ? state.job : null;
    if (replaces) state.undo.push(replaces);
    const job = { id: null, t0: performance.now(), first: null, grid: cfg.grid, words: [], probs: [], stepObjects: [], objects: [], hypothesis: [], done: false, failed: false, beam, maxLen, prefix, file: state.file, replaces, refocus };
    el.whatifError.hidden = true;
    el.whatifWord.value = "";
    const file = state.file;
    state.job = job;
    state.selected = -1;
    renderWords([]);
    renderObjects(null);
    drawHeat(null);
    resetResult();
    el.tMode.textContent = (beam === 1 ? "greedy" : `beam ${beam}`) + (prefix ? " · what if" : "");
    el.undo.disabled = state.undo.length === 0;
    el.stage.classList.add("busy");
    setStatus("busy", "Uploading…");
    const image = await file.arrayBuffer();
    if (state.job !== job) return;
    job.t0 = performance.now();
    socket.emit("caption", prefix ? { image, beam, maxLen, prefix } : { image, beam, maxLen }, (ack) => {
      if (state.job !== job) return;
      if (ack.ok) job.id = ack.id;
      else fail(ack);
    });
  }
  const mine = (e) => state.job && !state.job.done && e.id === state.job.id;

  socket.on("queued", (e) => mine(e) && setStatus("busy", `Queued: position ${e.position}`));
  socket.on("started", (e) => {
    if (!mine(e)) return;
    state.job.grid = e.grid;
    state.job.objects = Array.isArray(e.objects) ? e.objects : [];
    renderObjects(state.job.objects);
    setStatus("busy", "Decoding…");
    document.dispatchEvent(new CustomEvent("studio:started", { detail: { objects: state.job.objects } }));
  });
  socket.on("step", (e) => {
    if (!mine(e)) return;
    const job = state.job;
    job.first ??= performance.now() - job.t0;
    // Beam search may rewrite earlier words: their probabilities come with the hypothesis.
    if (Array.isArray(e.probs) && e.probs.length === e.hypothesis.length) job.probs = e.probs;
    else job.probs[e.index] = e.prob;
    // Beam search may rewrite earlier words: a word keeps the object its own step named only
    // while the hypothesis still has that word there.
    job.stepObjects.length = e.index;
    job.stepObjects[e.index] = { word: e.word, object: e.object };
    const objects = e.hypothesis.map((w, i) => (job.stepObjects[i]?.word === w ? job.stepObjects[i].object : undefined));
    const shown = renderWords(e.hypothesis, { probs: job.probs, objects, current: e.index });
    el.confidence.hidden = false;
    drawHeat(e.alpha, e.word);
    highlightObject(e.object);
    if (Array.isArray(e.beams)) {
      noteRewrite(job.hypothesis, e.hypothesis, job);
      renderBeams(e.beams, job);
    }
    job.hypothesis = e.hypothesis;
    setStatus("busy", `Decoding… ${shown} word${shown === 1 ? "" : "s"}`);
    document.dispatchEvent(new CustomEvent("studio:step", { detail: { index: e.index, word: e.word, shown, object: e.object, beams: e.beams?.length ?? 0 } }));
  });
  socket.on("done", (e) => {
    if (!mine(e)) return;
    const job = state.job;
    job.done = true;
    job.result = e;
    state.typed = null;
    if (Array.isArray(e.objects)) {
      job.objects = e.objects;
      renderObjects(job.objects);
    }
    if (!job.prefix?.length) {
      state.compare[job.beam === 1 ? "greedy" : "beam"] = { caption: e.caption, logProb: e.logProb, words: e.words.length, beam: job.beam, ms: e.ms };
    }
    showResult(e, job);
    addHistory(e, job);
    document.dispatchEvent(new CustomEvent("studio:done", { detail: { caption: e.caption, ms: e.ms, prefix: job.prefix, beam: job.beam } }));
  });
  /** Shows a finished caption: a new one, or one that Undo brought back. */
  function showResult(e, job, { restored = false } = {}) {
    job.words = e.words;
    el.stage.classList.remove("busy");
    renderWords(e.words.map((w) => w.word), { probs: e.words.map((w) => w.prob), objects: e.words.map((w) => w.object), animate: false });
    el.caption.classList.add("interactive");
    // A "what if" keeps the word that was chosen in view; otherwise the last word.
    const forced = Array.isArray(e.prefix) ? e.prefix.length : 0;
    const last = forced ? Math.min(forced, e.words.length) - 1 : e.words.length - 1;
    if (last >= 0) showWord(last, { sticky: true });
    else drawHeat(null);
    el.live.textContent = e.caption;
    el.tTotal.textContent = fmtMs(e.ms);
    el.tFirst.textContent = fmtMs(job.first);
    el.tWait.textContent = fmtMs(e.waitMs);
    el.replay.disabled = e.words.length === 0;
    el.download.href = `${e.picture}?download`;
    el.download.classList.remove("disabled");
    el.download.removeAttribute("aria-disabled");
    el.download.tabIndex = 0;
    if (!restored) setStatus("done", `Done in ${fmtMs(e.ms)}`);
    el.hint.hidden = e.words.length === 0;
    el.tMode.textContent = (job.beam === 1 ? "greedy" : `beam ${job.beam}`) + (job.prefix ? " · what if" : "");
    el.confidence.hidden = e.words.length === 0;
    el.logprob.textContent = `Caption log-probability ${e.logProb.toFixed(2)} (${(e.logProb / (e.words.length + 1)).toFixed(2)} per word)`;
    el.beamsSection.hidden = !job.beams;
    if (job.beams) renderBeams(job.beams, job);
    el.undo.disabled = state.undo.length === 0;
    renderCompare();
    // Enter in the alternatives started this caption: the keyboard goes back where it was.
    if (job.refocus && !restored && !el.explain.hidden) {
      job.refocus = false;
      el.alternatives.focus();
    }
  }
  socket.on("failed", (e) => {
    const job = state.job;
    if (!job || job.done) return;
    if (e.id !== job.id && !(e.id === null && job.id === null)) return;
    fail(e);
  });
  function fail(e) {
    const job = state.job;
    if (job) job.failed = true;
    el.stage.classList.remove("busy");
    // A what-if, a comparison or a re-run that failed (a word the model does not know, a busy
    // server, a timeout): back to the caption it was replacing, with the reason.
    if (job?.replaces && state.undo.at(-1) === job.replaces) {
      const prev = state.undo.pop();
      const { word, active } = state.alt; // showResult moves the selection to the last word
      restore(prev);
      if (job.prefix && word >= 0 && word < prev.words.length) {
        showWord(word, { sticky: true });
        setActiveAlternative(active);
        el.whatifWord.value = state.typed ?? "";
        showWhatifError(e.message);
      }
    }
    state.typed = null;
    setStatus("error", e.message || "Something went wrong.");
  }

  function addHistory(e, job) {
    const li = document.createElement("li");
    const img = document.createElement("img");
    img.alt = "";
    try {
      const c = document.createElement("canvas");
      c.width = c.height = 88;
      const s = Math.min(el.photo.naturalWidth, el.photo.naturalHeight);
      c.getContext("2d").drawImage(el.photo, (el.photo.naturalWidth - s) / 2, (el.photo.naturalHeight - s) / 2, s, s, 0, 0, 88, 88);
      img.src = c.toDataURL("image/jpeg", 0.8);
    } catch {
      // No thumbnail for formats the browser cannot draw.
    }
    const text = document.createElement("div");
    const cap = document.createElement("p");
    cap.className = "h-caption";
    cap.textContent = e.caption || "(no words)";
    const meta = document.createElement("p");
    meta.className = "h-meta";
    meta.textContent = `${job.beam === 1 ? "greedy" : `beam ${job.beam}`}${job.prefix ? " · what if" : ""} · log p ${e.logProb.toFixed(2)} · ${fmtMs(e.ms)} · first word ${fmtMs(job.first)} · ${new Date().toLocaleTimeString()}`;
    text.append(cap, meta);
    li.append(img, text);
    el.history.prepend(li);
    while (el.history.children.length > 5) el.history.lastElementChild.remove();
    el.historySection.hidden = false;
  }
}
