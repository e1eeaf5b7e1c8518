/**
 * End to end in Debian's Chromium (playwright-core): the real server with the real model, a
 * real Flickr8k photo uploaded through the page. Checks that words appear one at a time, that
 * the heatmap canvas changes with each word, hover/tap/replay/download, the examples gallery,
 * keyboard access and a bad upload; the detected objects' labelled boxes on a coco-dev photo
 * (drawn when `started` arrives, the toggle, a word lighting up its box); saves screenshots
 * (light and dark, desktop and mobile) under test-output/. Skips, saying why, where Chromium is
 * not installed.
 */
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium, type Browser, type BrowserContextOptions, type Page } from "playwright-core";
import { loadCaptioner } from "../model/index.ts";
import type { Captioner } from "../model/types.ts";
import { createApp, type StudioApp } from "../server/app.ts";
import { makeConfig } from "../server/config.ts";
import { OBJECT_LABEL, OBJECT_PHOTO, assertWordsNameTheirObjects } from "./support/objects.ts";
import { DATA } from "./support/studio.ts";

const CHROMIUM = "/usr/bin/chromium";
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const ROOT = path.resolve(import.meta.dirname, "..");
const OUT = path.join(ROOT, "test-output");
const IMAGES = path.join(DATA, "images");
const PHOTO = path.join(IMAGES, "1000268201_693b08cb0e.jpg");
const EXAMPLES = ["1001773457_577c3a7d70.jpg", "1002674143_1b742ab4b8.jpg", "101654506_8eb26cfb60.jpg", "1003163366_44323f5815.jpg"];
const T = { timeout: 240_000 };
const skip = existsSync(CHROMIUM) ? false : `Chromium not found at ${CHROMIUM} (apt-get install -y chromium)`;

let captioner: Captioner;
let studio: StudioApp;
let browser: Browser;
let base: string;
let examplesDir: string;
const errors: string[] = [];

interface StepRecord {
  index: number;
  shown: number;
  chips: number;
  hash: number;
  /** Hypotheses the step sent, and rows the beam panel showed after it. */
  beams: number;
  beamRows: number;
}

/** Opens the studio and starts recording each streamed step with a hash of the heatmap canvas. */
async function open(options: BrowserContextOptions): Promise<Page> {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && errors.push(`console: ${m.text()}`));
  await page.goto(base);
  await page.evaluate(() => {
    const w = window as unknown as { steps: StepRecord[]; doneDetail: unknown; canvasHash: () => number };
    w.canvasHash = () => {
      const c = document.getElementById("heat") as HTMLCanvasElement;
      const d = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
      let h = 0;
      for (let i = 0; i < d.length; i += 7) h = (h * 31 + d[i]) >>> 0;
      return h;
    };
    w.steps = [];
    document.addEventListener("studio:step", (e) => {
      const { index, shown, beams } = (e as CustomEvent).detail;
      w.steps.push({ index, shown, chips: document.querySelectorAll("#caption .word").length, hash: w.canvasHash(), beams, beamRows: document.querySelectorAll("#beams li").length });
    });
    document.addEventListener("studio:done", (e) => (w.doneDetail = (e as CustomEvent).detail));
  });
  return page;
}

interface StartedRecord {
  objects: { label: string; score: number; box: number[] }[];
  /** Boxes on the page, and steps streamed, when `started` had been handled. */
  boxes: number;
  steps: number;
}

/** Records what the page shows when each `started` arrives. */
async function recordStarted(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { started: StartedRecord[]; steps: unknown[] };
    w.started = [];
    document.addEventListener("studio:started", (e) => {
      w.started.push({ objects: (e as CustomEvent).detail.objects, boxes: document.querySelectorAll("#objects .object-box").length, steps: w.steps.length });
    });
  });
}

/** The on-screen rectangles of the photo and of each object box, by data-index. */
const rects = (page: Page) =>
  page.evaluate(() => {
    // No named helper functions in here: the TypeScript loader would wrap them in a __name() the page lacks.
    const boxes = [...document.querySelectorAll<HTMLElement>("#objects .object-box")].map((e) => {
      const b = e.getBoundingClientRect();
      return { index: Number(e.dataset.index), label: e.getAttribute("aria-label"), text: e.textContent, x: b.x, y: b.y, w: b.width, h: b.height };
    });
    const p = document.getElementById("photo")!.getBoundingClientRect();
    return { photo: { x: p.x, y: p.y, w: p.width, h: p.height }, boxes: boxes.sort((a, b) => a.index - b.index) };
  });

interface DoneRecord {
  caption: string;
  ms: number;
  prefix: string[] | null;
  beam: number;
  steps: StepRecord[];
}

/** Does `act` (an upload, a click) and waits for the caption it starts, recording its steps. */
async function captionAfter(page: Page, act: () => Promise<unknown>): Promise<DoneRecord> {
  await page.evaluate(() => {
    const w = window as unknown as { steps: unknown[]; doneDetail: unknown };
    w.steps = [];
    w.doneDetail = null;
  });
  await act();
  await page.waitForFunction(() => (window as unknown as { doneDetail: unknown }).doneDetail, null, { timeout: 120_000 });
  return page.evaluate(() => {
    const w = window as unknown as { steps: StepRecord[]; doneDetail: Omit<DoneRecord, "steps"> };
    return { ...w.doneDetail, steps: w.steps };
  });
}

const captionFile = (page: Page, file: string) => captionAfter(page, () => page.setInputFiles("#file", file));
const chipWords = (page: Page) => page.$$eval("#caption .word", (els) => els.map((e) => e.textContent ?? ""));

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const hash = (page: Page) => page.evaluate(() => (window as unknown as { canvasHash: () => number }).canvasHash());
/** Full-page screenshot once the chips' CSS animations have settled. */
async function shot(page: Page, name: string): Promise<void> {
  await page.waitForTimeout(800);
  await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true });
}

before(async () => {
  if (skip) return;
  mkdirSync(OUT, { recursive: true });
  examplesDir = mkdtempSync(path.join(os.tmpdir(), "studio-browser-examples-"));
  for (const n of EXAMPLES) copyFileSync(path.join(IMAGES, n), path.join(examplesDir, n));
  captioner = await loadCaptioner();
  studio = createApp({ captioner, config: makeConfig({ port: 0, examplesDir }) });
  await new Promise<void>((resolve) => studio.httpServer.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(studio.httpServer.address() as { port: number }).port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
});

after(async () => {
  await browser?.close();
  await studio?.close();
  captioner?.dispose();
  if (examplesDir) rmSync(examplesDir, { recursive: true, force: true });
});

describe("studio page in Chromium", { skip }, () => {
  it("streams words one at a time and redraws the heatmap for each (desktop, light)", T, async () => {
    const page = await open({ viewport: { width: 1360, height: 900 }, colorScheme: "light" });
    await page.click('label[for="mode-greedy"]');
    const { caption, steps } = await captionFile(page, PHOTO);
    assert.ok(steps.length >= 3, `several steps streamed (${steps.length})`);
    steps.forEach((s, i) => {
      assert.equal(s.index, i, "in order");
      assert.equal(s.shown, i + 1, "one more word each step");
      assert.equal(s.chips, i + 1, "the page shows exactly the words so far");
    });
    for (let i = 1; i < steps.length; i++) assert.notEqual(steps[i].hash, steps[i - 1].hash, `the heatmap changed at word ${i}`);
    const words = await page.$$eval("#caption .word", (els) => els.map((e) => e.textContent));
    assert.equal(words.length, steps.length);
    assert.equal(caption.replace(/ ('s|n't)/g, "$1"), caption);
    assert.match(await page.textContent("#status-text") ?? "", /^Done in/);
    assert.match(await page.textContent("#t-total") ?? "", /\d+ (ms|s)$/);
    assert.match(await page.textContent("#t-mode") ?? "", /greedy/);

    // Hover shows each word's own heatmap.
    await page.hover("#caption .word >> nth=0");
    const h0 = await hash(page);
    await page.hover("#caption .word >> nth=1");
    const h1 = await hash(page);
    assert.notEqual(h0, h1);
    assert.equal(await page.textContent("#stage-word"), words[1]);
    await shot(page, "browser-desktop-light");

    // The overlay's opacity is adjustable.
    await page.fill("#opacity", "25");
    assert.equal(await page.$eval("#heat", (c) => (c as HTMLElement).style.opacity), "0.25");

    // Replay plays the words again, one at a time.
    await page.click("#replay");
    await page.waitForFunction(() => document.querySelectorAll("#caption .word.pending").length > 0, null, { timeout: 5000 });
    await page.waitForFunction(() => document.querySelectorAll("#caption .word.pending").length === 0, null, { timeout: 60_000 });

    // The downloadable picture, rendered on the server.
    const href = await page.getAttribute("#download", "href");
    assert.ok(href);
    const res = await page.request.get(new URL(href, base).href);
    assert.equal(res.status(), 200);
    assert.equal(res.headers()["content-type"], "image/png");
    await page.context().close();
  });

  it("shows the live best hypothesis with beam search (desktop, dark)", T, async () => {
    const page = await open({ viewport: { width: 1360, height: 900 }, colorScheme: "dark" });
    await page.fill("#beam", "3");
    const { steps } = await captionFile(page, PHOTO);
    assert.ok(steps.length >= 2);
    for (const s of steps) assert.equal(s.chips, s.shown, "the page shows the whole hypothesis");
    await page.hover("#caption .word >> nth=2");
    await shot(page, "browser-desktop-dark");
    await page.context().close();
  });

  for (const scheme of ["light", "dark"] as const) {
    it(`works on a phone: tap a word to see its heatmap (mobile, ${scheme})`, T, async () => {
      const page = await open({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, colorScheme: scheme });
      const { steps } = await captionFile(page, path.join(IMAGES, EXAMPLES[0]));
      assert.ok(steps.length >= 2);
      const before = await hash(page);
      await page.tap("#caption .word >> nth=1");
      assert.notEqual(await hash(page), before);
      assert.ok(await page.$eval("#caption .word >> nth=1", (e) => e.classList.contains("selected")));
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `no sideways scrolling (${overflow}px)`);
      await shot(page, `browser-mobile-${scheme}`);
      await page.context().close();
    });
  }

  it("captions an example from the gallery, and the keyboard reaches everything", T, async () => {
    const page = await open({ viewport: { width: 1100, height: 900 } });
    // Listen from the start: Playwright intercepts file choosers only once a listener exists.
    let choosers = 0;
    page.on("filechooser", () => choosers++);
    assert.equal(await page.locator(".example").count(), EXAMPLES.length);
    await page.evaluate(() => ((window as unknown as { doneDetail: unknown }).doneDetail = null));
    await page.click(".example >> nth=1");
    await page.waitForFunction(() => (window as unknown as { doneDetail: unknown }).doneDetail, null, { timeout: 120_000 });
    assert.ok(await page.$eval(".example >> nth=1", (e) => e.classList.contains("current")));

    // Enter on the focused drop zone opens the file picker.
    await page.focus("#dropzone");
    await page.keyboard.press("Enter");
    await until(() => choosers === 1, "a file chooser opens");

    // Arrow keys move between words and show each one's heatmap.
    await page.focus("#caption .word >> nth=0");
    await page.keyboard.press("ArrowRight");
    assert.equal(await page.evaluate(() => document.activeElement?.getAttribute("data-index")), "1");
    assert.ok(await page.$eval("#caption .word >> nth=1", (e) => e.classList.contains("selected")));
    await page.context().close();
  });

  it("shows a clear message for a file that is not an image", T, async () => {
    const page = await open({ viewport: { width: 1100, height: 800 } });
    await page.setInputFiles("#file", { name: "holiday.jpg", mimeType: "image/jpeg", buffer: Buffer.from("this is not a photo") });
    await page.waitForFunction(() => document.getElementById("status")!.classList.contains("error"), null, { timeout: 60_000 });
    assert.match(await page.textContent("#status-text") ?? "", /not an image/);
    await page.context().close();
  });

  it("renders the API guide (light and dark)", T, async () => {
    for (const scheme of ["light", "dark"] as const) {
      const page = await open({ viewport: { width: 1100, height: 900 }, colorScheme: scheme });
      await page.goto(`${base}/api`);
      assert.match(await page.textContent("h1") ?? "", /Use via API/);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `code blocks scroll inside the page (${overflow}px too wide)`);
      await shot(page, `browser-api-${scheme}`);
      await page.context().close();
    }
  });

  it("draws the detected objects as labelled boxes; the toggle hides them; a word lights up its box", T, async () => {
    assert.ok(existsSync(OBJECT_PHOTO), `the coco-dev photo ${OBJECT_PHOTO}`);
    for (const [scheme, phone] of [["light", false], ["dark", false], ["light", true], ["dark", true]] as const) {
      const page = await open(phone ? { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, colorScheme: scheme } : { viewport: { width: 1360, height: 900 }, colorScheme: scheme });
      const name = `browser-objects-${phone ? "mobile" : "desktop"}-${scheme}`;
      await recordStarted(page);
      await page.click('label[for="mode-greedy"]');
      await captionFile(page, OBJECT_PHOTO);

      // The boxes were drawn as soon as `started` arrived, before the first word.
      const started = await page.evaluate(() => (window as unknown as { started: StartedRecord[] }).started);
      assert.equal(started.length, 1);
      const { objects } = started[0];
      assert.ok(objects.length > 0, "objects detected");
      assert.equal(objects[0].label, OBJECT_LABEL);
      assert.equal(started[0].boxes, objects.length, "one box per object, drawn on `started`");
      assert.equal(started[0].steps, 0, "before any word");

      // One box per object, labelled "giraffe 87%", where the detector put it on the photo.
      const { photo, boxes } = await rects(page);
      assert.equal(boxes.length, objects.length);
      boxes.forEach((b, i) => {
        const o = objects[i];
        const label = `${o.label} ${Math.round(o.score * 100)}%`;
        assert.equal(b.label, label, "each box has an accessible label");
        assert.equal(b.text, label, "and shows it");
        const want = { x: photo.x + o.box[0] * photo.w, y: photo.y + o.box[1] * photo.h, w: o.box[2] * photo.w, h: o.box[3] * photo.h };
        for (const k of ["x", "y", "w", "h"] as const) assert.ok(Math.abs(b[k] - want[k]) <= 2, `box ${i} ${k}: ${b[k]} vs ${want[k]}`);
      });
      assert.match(boxes[0].label ?? "", new RegExp(`^${OBJECT_LABEL} \\d{1,3}%$`));
      assert.deepEqual(await page.$$eval("#object-list li", (els) => els.map((e) => e.textContent)), boxes.map((b) => b.label), "listed under the caption too");

      // A word that names the object lights up its box (and still shows its own heatmap).
      const chips = await page.$$eval("#caption .word", (els) => els.map((e) => ({ word: e.textContent, object: (e as HTMLElement).dataset.object })));
      const k = chips.findIndex((c) => c.object !== undefined);
      assert.ok(k >= 0, `a word names a detected object: ${chips.map((c) => c.word).join(" ")}`);
      const other = chips.findIndex((c) => c.object === undefined);
      const target = Number(chips[k].object);
      assertWordsNameTheirObjects(chips.map((c) => ({ word: c.word ?? "", object: c.object === undefined ? undefined : Number(c.object) })), objects);
      const highlighted = () => page.$$eval("#objects .object-box.highlight", (els) => els.map((e) => Number((e as HTMLElement).dataset.index)));
      if (phone) await page.tap(`#caption .word >> nth=${other}`);
      else await page.hover(`#caption .word >> nth=${other}`);
      const otherHash = await hash(page);
      assert.deepEqual(await highlighted(), [], `"${chips[other].word}" names no object: no box is highlighted`);
      if (phone) await page.tap(`#caption .word >> nth=${k}`);
      else await page.hover(`#caption .word >> nth=${k}`);
      assert.deepEqual(await highlighted(), [target], `"${chips[k].word}" highlights box ${target}`);
      assert.notEqual(await hash(page), otherHash, "the heatmap follows the word too");
      assert.equal(await page.textContent("#stage-word"), chips[k].word);
      assert.ok(await page.$eval(`#object-list li[data-index="${target}"]`, (e) => e.classList.contains("highlight")));
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `no sideways scrolling (${overflow}px)`);
      await shot(page, name);

      if (!phone && scheme === "light") {
        // The toggle, from the keyboard: hides the boxes, shows them again, and is remembered.
        const visible = () => page.isVisible("#objects .object-box >> nth=0");
        assert.equal(await page.isChecked("#show-objects"), true, "boxes are on by default");
        assert.equal(await visible(), true);
        await page.focus("#show-objects");
        await page.keyboard.press("Space");
        assert.equal(await page.isChecked("#show-objects"), false);
        assert.equal(await visible(), false, "hidden");
        await shot(page, `${name}-hidden`);
        await page.keyboard.press("Space");
        assert.equal(await visible(), true, "shown again");
        await page.keyboard.press("Space");
        await page.reload();
        assert.equal(await page.isChecked("#show-objects"), false, "the choice is remembered");
        await page.setInputFiles("#file", OBJECT_PHOTO);
        await page.waitForFunction(() => document.querySelectorAll("#objects .object-box").length > 0, null, { timeout: 120_000 });
        assert.equal(await visible(), false, "new boxes stay hidden while the toggle is off");
        await page.click('label[for="show-objects"]');
        assert.equal(await visible(), true);
        assert.equal(await page.evaluate(() => localStorage.getItem("studio-objects")), "on");
      }
      await page.context().close();
    }
  });

  it("what if: pick an alternative for word 3 and the caption is rewritten from there, streaming; undo; the keyboard; a typed word (desktop, light)", T, async () => {
    const page = await open({ viewport: { width: 1360, height: 1000 }, colorScheme: "light" });
    await page.click('label[for="mode-greedy"]');
    await captionFile(page, PHOTO);
    const before = await chipWords(page);
    assert.ok(before.length >= 4, before.join(" "));

    // Confidence: in each word's accessible name, and as a bar under it coloured by the probability.
    const chips = await page.$$eval("#caption .word", (els) => els.map((e) => ({ label: e.getAttribute("aria-label") ?? "", p: Number((e as HTMLElement).style.getPropertyValue("--p")), width: parseFloat(getComputedStyle(e, "::after").width), colour: getComputedStyle(e, "::after").backgroundColor })));
    chips.forEach((c, i) => {
      assert.match(c.label, new RegExp(`^${before[i]}, (<1|\\d{1,2})% confident`), "the confidence is in the accessible name");
      assert.ok(c.width > 0, `word ${i} has a visible bar`);
    });
    const sure = chips.reduce((a, b) => (b.p > a.p ? b : a)), unsure = chips.reduce((a, b) => (b.p < a.p ? b : a));
    assert.notEqual(sure.colour, unsure.colour, "surer words get another colour");
    assert.ok(sure.width > unsure.width, "and a longer bar");
    assert.equal(await page.isVisible("#confidence"), true, "with a legend");
    assert.match(await page.textContent("#logprob") ?? "", /log-probability -\d+\.\d\d \(-\d+\.\d\d per word\)/);

    // Word 3's alternatives: a listbox of the model's top 5 words with their probabilities.
    await page.click("#caption .word >> nth=2");
    const options = () => page.$$eval("#alternatives [role=option]", (els) => els.map((e) => ({ word: (e as HTMLElement).dataset.word ?? "", chosen: (e as HTMLElement).dataset.chosen === "true", selected: e.getAttribute("aria-selected") === "true", disabled: e.getAttribute("aria-disabled") === "true", label: e.getAttribute("aria-label") ?? "" })));
    const opts = await options();
    assert.ok(opts.length >= 5, `${opts.length} options`);
    assert.equal(opts.filter((o) => o.chosen).length, 1, "the caption's word is marked");
    assert.match(opts.find((o) => o.chosen)!.label, /the caption's word$/, "and says so");
    assert.equal(opts.filter((o) => o.selected).length, 1, "aria-selected follows the active option");
    for (const o of opts) assert.match(o.label, /, (<1|\d{1,2}|99)%/, "each option's probability is in its name");
    const k = opts.findIndex((o) => !o.chosen && !o.disabled);
    const alt = opts[k].word;
    const rewritten = await captionAfter(page, () => page.click(`#alternatives [role=option] >> nth=${k}`));
    const after = await chipWords(page);
    assert.deepEqual(after.slice(0, 2), before.slice(0, 2), "the words before it stay");
    assert.equal(after[2], alt, "word 3 is the chosen alternative");
    assert.deepEqual(rewritten.prefix, [...before.slice(0, 2), alt]);
    assert.ok(rewritten.steps.length === after.length && rewritten.steps.every((s, i) => s.index === i && s.chips === i + 1), "streamed again, word by word");
    assert.match(await page.textContent("#t-mode") ?? "", /what if/);
    assert.match(await page.textContent("#history li >> nth=0") ?? "", /what if/, "the session history says so");
    await shot(page, "browser-whatif-light");

    // Undo brings the previous caption back.
    await page.click("#undo");
    assert.deepEqual(await chipWords(page), before);
    assert.equal(await page.isDisabled("#undo"), true);

    // The keyboard: arrows move through the options, Enter rewrites from there.
    await page.click("#caption .word >> nth=2");
    await page.focus("#alternatives");
    await page.keyboard.press("ArrowDown");
    let active = await page.$eval("#alternatives", (e) => Number(e.getAttribute("aria-activedescendant")?.replace("alt-", "")));
    if (opts[active].chosen || opts[active].disabled) {
      await page.keyboard.press("ArrowDown");
      active++;
    }
    assert.equal(await page.$eval(`#alt-${active}`, (e) => e.getAttribute("aria-selected")), "true");
    const byKey = await captionAfter(page, () => page.keyboard.press("Enter"));
    assert.equal((await chipWords(page))[2], opts[active].word);
    assert.deepEqual(byKey.prefix, [...before.slice(0, 2), opts[active].word]);
    assert.equal(await page.evaluate(() => document.activeElement?.id), "alternatives", "the keyboard stays in the list");
    await page.click("#undo");

    // A typed word outside the vocabulary gets a clear message, and the caption stays.
    await page.click("#caption .word >> nth=1");
    await page.fill("#whatif-word", "qwxyzzy");
    await page.click("#whatif-run");
    await page.waitForSelector("#whatif-error:not([hidden])");
    assert.match(await page.textContent("#whatif-error") ?? "", /"qwxyzzy" is not in the model's vocabulary/);
    assert.deepEqual(await chipWords(page), before);
    // One it knows rewrites the caption.
    assert.equal(await page.inputValue("#whatif-word"), "qwxyzzy", "the typed word is given back to fix");
    await page.fill("#whatif-word", "cat");
    await captionAfter(page, () => page.click("#whatif-run"));
    const typed = await chipWords(page);
    assert.deepEqual(typed.slice(0, 2), [before[0], "cat"]);
    assert.equal(await page.isVisible("#whatif-error"), false, "the old message is gone");
    await page.context().close();
  });

  it("beam search: the beam panel lists the hypotheses while decoding; greedy and beam side by side (desktop, dark)", T, async () => {
    const page = await open({ viewport: { width: 1360, height: 1000 }, colorScheme: "dark" });
    await page.click('label[for="mode-beam"]');
    await page.fill("#beam", "3");
    const { steps, caption } = await captionFile(page, PHOTO);
    assert.ok(steps.every((s) => s.beams >= 1 && s.beamRows === s.beams), "every step's beams are listed");
    assert.ok(steps.some((s) => s.beams >= 3), `several hypotheses at once (at most ${Math.max(...steps.map((s) => s.beams))})`);
    const rows = await page.$$eval("#beams li", (els) => els.map((e) => ({ best: e.classList.contains("best"), text: e.querySelector(".beam-words")?.textContent ?? "", label: e.getAttribute("aria-label") ?? "" })));
    assert.ok(rows.length >= 2, "the final list keeps what lost");
    assert.equal(rows.filter((r) => r.best).length, 1);
    assert.equal(rows[0].best, true);
    assert.equal(rows[0].text, caption.replace(/'s/g, " 's"));
    assert.match(rows[0].label, /^best.*log-probability -\d/);
    // Confidence bars in dark mode too.
    const widths = await page.$$eval("#caption .word", (els) => els.map((e) => parseFloat(getComputedStyle(e, "::after").width)));
    assert.ok(widths.every((w) => w > 0));
    await page.hover("#caption .word >> nth=1");
    await shot(page, "browser-beams-dark");

    // Compare: the other mode on the same photo, side by side with their log-probabilities.
    assert.match(await page.textContent("#compare-run") ?? "", /greedy/);
    const greedy = await captionAfter(page, () => page.click("#compare-run"));
    assert.equal(greedy.beam, 1);
    assert.equal(await page.isVisible("#compare-section"), true);
    const cards = await page.$$eval("#compare .compare-card", (els) => els.map((e) => e.textContent ?? ""));
    assert.equal(cards.length, 2);
    assert.match(cards[0], /^Greedy/);
    assert.match(cards[1], /^Beam 3/);
    assert.ok(cards[0].includes(greedy.caption) && cards[1].includes(caption));
    assert.ok(cards.every((c) => /log p -\d+\.\d\d/.test(c)));
    assert.equal(await page.locator("#history li").count(), 2, "the session history keeps both");
    await shot(page, "browser-compare-dark");
    await page.context().close();
  });

  it("logged no page errors or CSP violations", () => {
    assert.deepEqual(errors, []);
  });
});

// Keep the list of screenshots discoverable from the test output.
after(() => {
  if (!skip && existsSync(OUT)) console.log(`screenshots: ${readdirSync(OUT).filter((n) => n.startsWith("browser-")).map((n) => path.join("test-output", n)).join(", ")}`);
});
