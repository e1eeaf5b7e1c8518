/**
 * HTTP API and pages, against the real server (createApp, listening on a random port) with the
 * real shipped model. Every bad input gets its own test.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync, copyFileSync, readFileSync } from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import zlib from "node:zlib";
import sharp, { type SharpOptions } from "sharp";
import request from "supertest";
import { toRgbSquare } from "../model/image.ts";
import { PrefixError } from "../model/index.ts";
import { tf } from "../model/tf.ts";
import { decodeUpload, sniffImageType } from "../server/decode-upload.ts";
import { toClientError } from "../server/errors.ts";
import { DATA, studioFixture, waitFor } from "./support/studio.ts";

// Multer's disk storage and most libraries write temp files under os.tmpdir(): point it at a
// folder of our own, so "no temporary files" is checkable.
const tmp = mkdtempSync(path.join(os.tmpdir(), "studio-http-test-"));
process.env.TMPDIR = tmp;

const IMAGES = path.join(DATA, "images");
const PHOTOS = readdirSync(IMAGES).filter((n) => n.endsWith(".jpg")).sort().slice(0, 8);
const JPEG = readFileSync(path.join(IMAGES, PHOTOS[0]));
const T = { timeout: 180_000 };

const fixture = studioFixture();
const { serve } = fixture;

function sumsToOne(alpha: number[], cells: number) {
  assert.equal(alpha.length, cells);
  assert.ok(alpha.every((a) => Number.isFinite(a) && a >= 0), "attention weights are non-negative numbers");
  const s = alpha.reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(s - 1) < 1e-3, `attention sums to ${s}`);
}

/** A PNG whose header claims width x height, with almost no pixel data (a decompression bomb's shape). */
async function pngClaiming(width: number, height: number): Promise<Buffer> {
  const png = Buffer.from(await sharp({ create: { width: 1, height: 1, channels: 3, background: "#000" } }).png().toBuffer());
  png.writeUInt32BE(width, 16);
  png.writeUInt32BE(height, 20);
  png.writeUInt32BE(zlib.crc32(png.subarray(12, 29)), 29); // IHDR chunk CRC over type + data
  return png;
}

let tmpAtStart: string[] = [];

before(() => {
  // After the fixture's captioner: the model's runtimes may leave files of their own at load (onnxruntime: mat-debug-<pid>.log).
  tmpAtStart = readdirSync(tmp).sort();
});

after(() => {
  // After the fixture has closed the studios and disposed of the captioner.
  rmSync(tmp, { recursive: true, force: true });
});

describe("POST /api/caption", () => {
  let url: string;
  before(async () => {
    ({ url } = await serve());
  });

  it("captions a multipart upload: words with attention grids summing to 1", T, async () => {
    const res = await request(url).post("/api/caption").attach("image", JPEG, "photo.jpg").expect(200).expect("Content-Type", /json/);
    const { caption, words, grid, ms } = res.body;
    assert.deepEqual(grid, fixture.captioner.grid);
    assert.ok(typeof caption === "string" && caption.length > 0);
    assert.ok(words.length > 0);
    for (const w of words) {
      assert.ok(fixture.captioner.words.includes(w.word), `${w.word} is in the vocabulary`);
      assert.ok(w.prob > 0 && w.prob <= 1);
      sumsToOne(w.alpha, grid[0] * grid[1]);
    }
    assert.ok(ms > 0);
  });

  it("captions the raw image sent as the body, whatever the declared type", T, async () => {
    const res = await request(url).post("/api/caption?beam=1&maxLen=5").set("Content-Type", "application/octet-stream").send(JPEG).expect(200);
    assert.ok(res.body.words.length >= 1 && res.body.words.length <= 5);
    assert.equal(res.body.beam, 1);
    const again = await request(url).post("/api/caption?beam=1&maxLen=5").set("Content-Type", "text/plain").send(JPEG).expect(200);
    assert.equal(again.body.caption, res.body.caption, "greedy decoding is deterministic");
  });

  it("takes beam and maxLen as multipart fields too", T, async () => {
    const res = await request(url).post("/api/caption").field("beam", "2").field("maxLen", "3").attach("image", JPEG, "p.jpg").expect(200);
    assert.equal(res.body.beam, 2);
    assert.ok(res.body.words.length <= 3);
  });

  it("takes a what-if prefix as a query or form field; words carry their top 5; bad prefixes get a 400", T, async () => {
    const res = await request(url).post("/api/caption?beam=1&prefix=a%20cat").attach("image", JPEG, "p.jpg").expect(200);
    assert.deepEqual(res.body.words.slice(0, 2).map((w: { word: string }) => w.word), ["a", "cat"]);
    assert.deepEqual(res.body.prefix, ["a", "cat"]);
    assert.ok(res.body.logProb < 0);
    for (const w of res.body.words) assert.equal(w.top.length, 5);
    const form = await request(url).post("/api/caption").field("beam", "2").field("prefix", "two").attach("image", JPEG, "p.jpg").expect(200);
    assert.equal(form.body.words[0].word, "two");
    // A PrefixError from the model itself (should one get past the options check) is a 400 too.
    assert.deepEqual(toClientError(new PrefixError("no such word")), { code: "bad_request", message: "no such word", status: 400 });
    for (const [prefix, pattern] of [["a qwxyzzy", /not in the model's vocabulary/], ["<end>", /marker/]] as const) {
      const bad = await request(url).post(`/api/caption?prefix=${encodeURIComponent(prefix)}`).attach("image", JPEG, "p.jpg").expect(400).expect("Content-Type", /json/);
      assert.equal(bad.body.error, "bad_request");
      assert.match(bad.body.message, pattern);
    }
  });

  it("answers ?format=png with the result picture", T, async () => {
    const res = await request(url).post("/api/caption?format=png&beam=1").attach("image", JPEG, "p.jpg").responseType("blob").expect(200).expect("Content-Type", "image/png");
    const meta = await sharp(res.body as Buffer).metadata();
    assert.equal(meta.format, "png");
    assert.ok(meta.width! > 300 && meta.height! > 200);
  });

  describe("image formats", () => {
    const cases: [string, () => Promise<Buffer>][] = [
      ["grayscale PNG", () => sharp(JPEG).toColourspace("b-w").png().toBuffer()],
      ["CMYK JPEG", () => sharp(JPEG).toColourspace("cmyk").jpeg().toBuffer()],
      ["PNG with alpha", () => sharp(JPEG).ensureAlpha(0.4).png().toBuffer()],
      ["16-bit PNG", () => sharp(JPEG).toColourspace("rgb16").png().toBuffer()],
      ["WebP", () => sharp(JPEG).webp().toBuffer()],
      ["TIFF", () => sharp(JPEG).tiff().toBuffer()],
      ["progressive JPEG", () => sharp(JPEG).jpeg({ progressive: true }).toBuffer()],
      ["animated GIF (first frame)", animatedGif],
      ["EXIF-rotated JPEG", () => sharp(JPEG).resize(200, 100, { fit: "fill" }).jpeg().withMetadata({ orientation: 6 }).toBuffer()],
    ];
    for (const [name, make] of cases) {
      it(`captions a ${name}`, T, async () => {
        const res = await request(url).post("/api/caption?beam=1").attach("image", await make(), "upload.bin").expect(200);
        assert.ok(res.body.words.length > 0);
      });
    }

    it("applies EXIF rotation and keeps only the first GIF frame when decoding", async () => {
      const rotated = await decodeUpload(await sharp(JPEG).resize(200, 100, { fit: "fill" }).jpeg().withMetadata({ orientation: 6 }).toBuffer(), { pixelLimit: 1e8 });
      assert.deepEqual([rotated.width, rotated.height, rotated.raw.width, rotated.raw.height], [100, 200, 100, 200]);
      const gif = await decodeUpload(await animatedGif(), { pixelLimit: 1e8 });
      assert.deepEqual([gif.raw.width, gif.raw.height, gif.raw.channels], [64, 64, 3]);
      const grey = await decodeUpload(await sharp(JPEG).toColourspace("b-w").png().toBuffer(), { pixelLimit: 1e8 });
      assert.equal(grey.raw.data.length, 224 * 224 * 3);
    });

    it("decodes uploads as the model does, and words their failures the same, naming the format", async () => {
      assert.deepEqual([(await sharp(JPEG).metadata()).width, (await sharp(JPEG).metadata()).height], [224, 224]);
      const upload = await decodeUpload(JPEG, { pixelLimit: 1e8 }, 224);
      assert.ok(Buffer.from(upload.raw.data).equals(Buffer.from(await toRgbSquare(JPEG, 224))), "the same pixels");
      const cut = JPEG.subarray(0, Math.floor(JPEG.length / 2));
      await assert.rejects(toRgbSquare(cut, 224), { name: "ImageError", message: "truncated image: the file ends before the image does" });
      await assert.rejects(decodeUpload(cut, { pixelLimit: 1e8 }), { name: "ImageError", message: "truncated JPEG: the file ends before the image does" });
    });

    it("judges type by content, not by name", () => {
      assert.equal(sniffImageType(JPEG), "jpeg");
      assert.equal(sniffImageType(Buffer.from("GIF89a......")), "gif");
      assert.equal(sniffImageType(Buffer.from("<svg xmlns='http://www.w3.org/2000/svg'/>")), null);
    });
  });

  describe("bad input: a 400 (or 413) with a JSON message, one case at a time", () => {
    const bad = async (body: Buffer | string, status: number, code: string, pattern: RegExp, asFile = true) => {
      const req = request(url).post("/api/caption");
      const res = await (asFile ? req.attach("image", Buffer.from(body), "photo.jpg") : req.set("Content-Type", "image/jpeg").send(Buffer.from(body))).expect(status).expect("Content-Type", /json/);
      assert.equal(res.body.error, code);
      assert.match(res.body.message, pattern);
    };

    it("empty file", T, async () => {
      await bad(Buffer.alloc(0), 400, "bad_image", /empty/);
    });
    it("empty raw body", T, async () => {
      const res = await request(url).post("/api/caption").set("Content-Type", "image/jpeg").expect(400);
      assert.equal(res.body.error, "bad_image");
      assert.match(res.body.message, /empty/);
    });
    it("no body and no content type", T, async () => {
      const res = await request(url).post("/api/caption").expect(400);
      assert.match(res.body.message, /no image/);
    });
    it("text file named .jpg", T, async () => {
      await bad("hello, I am not a photo\n", 400, "bad_image", /not an image/);
    });
    it("HTML sent raw as image/jpeg", T, async () => {
      await bad("<!doctype html><title>x</title>", 400, "bad_image", /not an image/, false);
    });
    it("SVG (not accepted: it is a program, not pixels)", T, async () => {
      await bad("<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'/>", 400, "bad_image", /not an image/);
    });
    it("truncated JPEG", T, async () => {
      await bad(JPEG.subarray(0, Math.floor(JPEG.length * 0.6)), 400, "bad_image", /truncated|corrupt/i);
    });
    it("truncated PNG", T, async () => {
      const png = await sharp(JPEG).png().toBuffer();
      await bad(png.subarray(0, Math.floor(png.length / 2)), 400, "bad_image", /truncated|corrupt|unreadable/i);
    });
    it("corrupt JPEG (valid header, garbage after)", T, async () => {
      await bad(Buffer.concat([JPEG.subarray(0, 300), Buffer.alloc(4000, 0x5a)]), 400, "bad_image", /JPEG/);
    });
    it("just a JPEG magic number", T, async () => {
      await bad(Buffer.from([0xff, 0xd8, 0xff]), 400, "bad_image", /JPEG/);
    });
    it("decompression bomb: a PNG claiming 30000 x 30000 pixels", T, async () => {
      await bad(await pngClaiming(30000, 30000), 400, "bad_image", /too large/);
    });
    it("wrong multipart field name", T, async () => {
      const res = await request(url).post("/api/caption").attach("photo", JPEG, "p.jpg").expect(400);
      assert.match(res.body.message, /field "image"/);
    });
    it("two files", T, async () => {
      const res = await request(url).post("/api/caption").attach("image", JPEG, "a.jpg").attach("image", JPEG, "b.jpg").expect(400);
      assert.equal(res.body.error, "bad_request");
    });
    for (const [q, why] of [["beam=0", "beam"], ["beam=99", "beam"], ["beam=two", "beam"], ["maxLen=0", "maxLen"], ["maxLen=1.5", "maxLen"], ["format=gif", "format"]] as const) {
      it(`bad option ${q}`, T, async () => {
        const res = await request(url).post(`/api/caption?${q}`).attach("image", JPEG, "p.jpg").expect(400);
        assert.equal(res.body.error, "bad_request");
        assert.match(res.body.message, new RegExp(why));
      });
    }
    it("unknown API route is a JSON 404", T, async () => {
      const res = await request(url).get("/api/nope").expect(404);
      assert.equal(res.body.error, "not_found");
      assert.match(res.body.message, /no such endpoint/);
      const gone = await request(url).get("/api/results/0000/picture.png").expect(404);
      assert.equal(gone.body.error, "not_found");
    });
  });

  it("refuses uploads over the size limit with 413, multipart and raw", T, async () => {
    const { url: small } = await serve({ uploadLimit: 20_000 });
    const big = Buffer.concat([JPEG, Buffer.alloc(30_000)]);
    const a = await request(small).post("/api/caption").attach("image", big, "big.jpg").expect(413);
    assert.equal(a.body.error, "too_large");
    const b = await request(small).post("/api/caption").set("Content-Type", "image/jpeg").send(big).expect(413);
    assert.equal(b.body.error, "too_large");
  });

  it("a --pixel-limit above the model's default of 40 MP is honoured end to end", T, async () => {
    // 7000 x 7000 = 49 MP: over the model's default, under this server's limit (the model used to refuse it).
    const big = await sharp({ create: { width: 7000, height: 7000, channels: 3, background: "#4a7" } }).png({ compressionLevel: 9 }).toBuffer();
    const { url: roomy } = await serve({ pixelLimit: 100_000_000 });
    const res = await request(roomy).post("/api/caption?beam=1&maxLen=4").set("Content-Type", "image/png").send(big).expect(200);
    assert.ok(res.body.words.length >= 1);
    const { url: strict } = await serve({ pixelLimit: 48_000_000 });
    const refused = await request(strict).post("/api/caption?beam=1").set("Content-Type", "image/png").send(big).expect(400);
    assert.match(refused.body.message, /too large/);
  });

  it("refuses images over the pixel limit before decoding them", T, async () => {
    const { url: strict } = await serve({ pixelLimit: 100 * 100 });
    const res = await request(strict).post("/api/caption").attach("image", JPEG, "p.jpg").expect(400);
    assert.match(res.body.message, /too large: 224x224/);
  });
});

describe("load", () => {
  it("a full queue answers 429 at once; the rest are served; nothing hangs", T, async () => {
    const { url, studio } = await serve({ concurrency: 1, maxQueue: 1 });
    const codes = await Promise.all(Array.from({ length: 6 }, () => request(url).post("/api/caption?beam=1").attach("image", JPEG, "p.jpg").then((r) => {
      if (r.status === 429) {
        assert.equal(r.body.error, "busy");
        assert.equal(r.headers["retry-after"], "2");
      }
      return r.status;
    })));
    assert.ok(codes.includes(429), `some refused: ${codes}`);
    assert.ok(codes.filter((c) => c === 200).length >= 2, `one running and one queued are served: ${codes}`);
    assert.ok(codes.every((c) => c === 200 || c === 429));
    assert.equal(studio.jobs.stats.running + studio.jobs.stats.waiting, 0);
  });

  it("no tensors leak over many requests, including bad and abandoned ones", T, async () => {
    const { url, studio } = await serve({ concurrency: 2 });
    await request(url).post("/api/caption?beam=2").attach("image", JPEG, "p.jpg").expect(200);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 12; i++) {
      const photo = readFileSync(path.join(IMAGES, PHOTOS[i % PHOTOS.length]));
      await request(url).post(`/api/caption?beam=${1 + (i % 3)}`).attach("image", photo, "p.jpg").expect(200);
      if (i % 4 === 0) await request(url).post("/api/caption").attach("image", JPEG.subarray(0, 2000), "t.jpg").expect(400);
    }
    // Clients that give up mid-caption: the job is aborted and its state freed.
    await Promise.all([0, 1, 2].map(() => abandon(url)));
    await waitFor(() => studio.jobs.stats.running === 0 && studio.jobs.stats.waiting === 0);
    assert.equal(tf.memory().numTensors, before);
    const health = await request(url).get("/api/health").expect(200);
    assert.equal(health.body.memory.tensors, before);
  });

  it("leaves no temporary files behind", () => {
    assert.deepEqual(readdirSync(tmp).sort(), tmpAtStart);
  });
});

describe("pages", () => {
  it("GET /api/health reports readiness, queue and memory", T, async () => {
    const { url } = await serve();
    const res = await request(url).get("/api/health").expect(200);
    assert.equal(res.body.status, "ok");
    assert.equal(res.body.ready, true);
    assert.deepEqual(res.body.model.grid, fixture.captioner.grid);
    assert.equal(res.body.queue.concurrency, 2);
    assert.ok(res.body.memory.rssMb > 0);
  });

  it("serves the studio page, its scripts, and the socket.io ESM client", T, async () => {
    const { url } = await serve();
    const page = await request(url).get("/").expect(200).expect("Content-Type", /html/);
    assert.match(page.text, /Caption Studio/);
    assert.match(page.text, /id="dropzone"/);
    assert.doesNotMatch(page.text, /id="examples"/, "no examples folder: no gallery");
    assert.match(page.headers["content-security-policy"], /script-src 'self'/);
    await request(url).get("/static/app.js").expect(200).expect("Content-Type", /javascript/);
    await request(url).get("/static/heatmap.js").expect(200);
    await request(url).get("/static/style.css").expect(200);
    await request(url).get("/socket.io/socket.io.esm.min.js").expect(200);
  });

  it("shows an examples gallery from a configured folder", T, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "studio-examples-"));
    try {
      for (const n of PHOTOS.slice(0, 3)) copyFileSync(path.join(IMAGES, n), path.join(dir, n));
      const { url } = await serve({ examplesDir: dir });
      const page = await request(url).get("/").expect(200);
      assert.match(page.text, /id="examples"/);
      assert.equal(page.text.match(/class="example"/g)?.length, 3);
      const img = await request(url).get(`/examples/${PHOTOS[0]}`).expect(200).expect("Content-Type", "image/jpeg");
      assert.equal(img.body.length, readFileSync(path.join(IMAGES, PHOTOS[0])).length);
      const escape = await request(url).get("/examples/..%2F..%2Fpackage.json");
      assert.ok([403, 404].includes(escape.status), `no way out of the examples folder (${escape.status})`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("documents the API at /api with curl and JavaScript examples", T, async () => {
    const { url } = await serve();
    const page = await request(url).get("/api").expect(200).expect("Content-Type", /html/);
    assert.match(page.text, /curl -F image=@photo.jpg/);
    assert.match(page.text, /socket\.emit\(&#34;caption&#34;|socket\.emit\("caption"/);
    for (const ev of ["queued", "started", "step", "done", "failed"]) assert.match(page.text, new RegExp(`<code>${ev}</code>`));
  });
});

describe("shutdown", () => {
  it("finishes in-flight work, then refuses new requests", T, async () => {
    const { url, studio } = await serve();
    const inFlight = request(url).post("/api/caption?beam=3").attach("image", JPEG, "p.jpg");
    const pending = inFlight.then((r) => r);
    await waitFor(() => studio.jobs.stats.running > 0);
    const closed = studio.close();
    const res = await pending;
    assert.equal(res.status, 200, "the in-flight caption completes");
    await closed;
    assert.equal(studio.httpServer.listening, false);
  });
});

async function animatedGif(): Promise<Buffer> {
  const a = await sharp(JPEG).resize(64, 64).raw().toBuffer();
  const b = Buffer.alloc(a.length, 200);
  return sharp(Buffer.concat([a, b]), { raw: { width: 64, height: 128, channels: 3, pageHeight: 64 } } as SharpOptions).gif().toBuffer();
}

/** Starts a caption and drops the connection before the answer. */
function abandon(url: string): Promise<void> {
  return new Promise((resolve) => {
    const u = new URL("/api/caption?beam=3&maxLen=30", url);
    const req = http.request(u, { method: "POST", headers: { "Content-Type": "image/jpeg", "Content-Length": JPEG.length } });
    req.on("error", () => resolve());
    req.end(JPEG, () => setTimeout(() => {
      req.destroy();
      resolve();
    }, 30));
  });
}
