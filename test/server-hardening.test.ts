/**
 * Hardening, against the real server (createApp on a random port, and `npm start` as a child
 * process for SIGTERM): security headers and CSP, CORS closed by default (HTTP and Socket.IO),
 * access control with a token or user:pass, rate limiting per client address, the Socket.IO
 * message size limit, error answers without stack traces or paths, nothing served outside
 * static/, and a SIGTERM that drains: in-flight captions finish, new ones are refused, exit 0.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { Client as GradioClient, handle_file } from "@gradio/client";
import sharp from "sharp";
import type { CaptionAck, DoneEvent, FailedEvent } from "../server/events.ts";
import { clientAddress, tunnelConnections } from "../server/rate-limit.ts";
import { manyPageTiff, manyScanJpeg } from "./fuzz-inputs.ts";
import { connected, DATA, handshakeStatus, openClient, studioFixture, waitFor, type Client } from "./support/studio.ts";
import { spawnNpmStart } from "./support/npm-start.ts";

const ROOT = path.resolve(import.meta.dirname, "..");
const IMAGES = path.join(DATA, "images");
const PHOTOS = readdirSync(IMAGES).filter((n) => n.endsWith(".jpg")).sort().slice(0, 4).map((n) => readFileSync(path.join(IMAGES, n)));
const JPEG = PHOTOS[0];
const T = { timeout: 120_000 };

const { serve, track } = studioFixture();

function socket(url: string, opts: Parameters<typeof openClient>[1] = {}): Client {
  return track(openClient(url, opts));
}

function outcome(s: Client): Promise<{ connected: true } | { connected: false; error: Error }> {
  return connected(s).then(() => ({ connected: true as const }), (error: Error) => ({ connected: false as const, error }));
}

function caption(s: Client, req: Record<string, unknown>): Promise<{ ack: CaptionAck; end: Promise<DoneEvent | FailedEvent> }> {
  return new Promise((resolve) => {
    let id: string | null | undefined;
    let finish!: (e: DoneEvent | FailedEvent) => void;
    const end = new Promise<DoneEvent | FailedEvent>((r) => (finish = r));
    s.on("done", (e) => e.id === id && finish(e));
    s.on("failed", (e) => (e.id === id || (id === null && e.id === null)) && finish(e));
    s.emit("caption", req as never, (ack: CaptionAck) => {
      id = ack.ok ? ack.id : null;
      resolve({ ack, end });
    });
  });
}

/** Sends raw bytes as a request (no client-side URL normalisation) and returns the raw answer. */
function raw(port: number, request: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, "127.0.0.1", () => s.write(request, "latin1"));
    let data = "";
    s.setTimeout(10_000, () => s.destroy());
    s.on("data", (d) => (data += d));
    s.on("close", () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0), text: data }));
    s.on("error", reject);
  });
}

describe("headers", () => {
  it("sends a same-origin CSP and the other security headers, from Express and from Socket.IO", T, async () => {
    const { url } = await serve();
    const res = await fetch(`${url}/`);
    const csp = res.headers.get("content-security-policy") ?? "";
    for (const d of ["default-src 'self'", "script-src 'self'", "style-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'self'"]) assert.ok(csp.includes(d), `${d} in ${csp}`);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    assert.equal(res.headers.get("x-frame-options"), "SAMEORIGIN");
    assert.equal(res.headers.get("referrer-policy"), "no-referrer");
    assert.equal(res.headers.get("cross-origin-opener-policy"), "same-origin");
    assert.equal(res.headers.get("x-powered-by"), null);
    const polling = await fetch(`${url}/socket.io/?EIO=4&transport=polling`);
    assert.equal(polling.status, 200);
    assert.equal(polling.headers.get("x-content-type-options"), "nosniff");
  });
});

describe("CORS, closed by default", () => {
  it("sends no CORS headers and refuses cross-site posts and Socket.IO handshakes", T, async () => {
    const { url, studio } = await serve();
    const evil = "https://evil.example";
    const get = await fetch(`${url}/api/health`, { headers: { origin: evil } });
    assert.equal(get.status, 200);
    assert.equal(get.headers.get("access-control-allow-origin"), null);
    const preflight = await fetch(`${url}/api/caption`, { method: "OPTIONS", headers: { origin: evil, "access-control-request-method": "POST" } });
    assert.equal(preflight.headers.get("access-control-allow-origin"), null);
    const post = await fetch(`${url}/api/caption`, { method: "POST", headers: { origin: evil, "content-type": "image/jpeg" }, body: JPEG });
    assert.equal(post.status, 403);
    assert.equal(((await post.json()) as { error: string }).error, "forbidden");
    assert.equal(studio.jobs.stats.running + studio.jobs.stats.waiting, 0);
    // The page's own origin may post.
    const own = await fetch(`${url}/api/caption?beam=1&maxLen=3`, { method: "POST", headers: { origin: url, "content-type": "image/jpeg" }, body: JPEG });
    assert.equal(own.status, 200);

    const ws = await outcome(socket(url, { extraHeaders: { origin: evil } }));
    assert.equal(ws.connected, false, "a cross-site websocket is refused");
    const polling = await fetch(`${url}/socket.io/?EIO=4&transport=polling`, { headers: { origin: evil } });
    assert.equal(polling.status, 403);
    assert.equal((await outcome(socket(url, { extraHeaders: { origin: url } }))).connected, true);
  });

  it("opens to the origins listed in --cors-origins only", T, async () => {
    const ok = "https://ok.example";
    const { url } = await serve({ corsOrigins: [ok] });
    const get = await fetch(`${url}/api/health`, { headers: { origin: ok } });
    assert.equal(get.headers.get("access-control-allow-origin"), ok);
    const preflight = await fetch(`${url}/api/caption`, { method: "OPTIONS", headers: { origin: ok, "access-control-request-method": "POST" } });
    assert.equal(preflight.status, 204);
    assert.match(preflight.headers.get("access-control-allow-methods") ?? "", /POST/);
    const other = await fetch(`${url}/api/health`, { headers: { origin: "https://other.example" } });
    assert.equal(other.headers.get("access-control-allow-origin"), null);
    assert.equal((await outcome(socket(url, { extraHeaders: { origin: ok } }))).connected, true);
    assert.equal((await outcome(socket(url, { extraHeaders: { origin: "https://other.example" } }))).connected, false);
  });
});

describe("access control", () => {
  it("is off by default, and on with --token: 401 without it, cookie and clean URL with it", T, async () => {
    const open = await serve();
    assert.equal((await fetch(`${open.url}/api/health`)).status, 200);
    assert.equal((await outcome(socket(open.url))).connected, true);

    const token = "local-token-0123456789";
    const { url } = await serve({ token });
    const none = await fetch(`${url}/api/health`);
    assert.equal(none.status, 401);
    assert.deepEqual(Object.keys((await none.json()) as object).sort(), ["error", "message"]);
    assert.equal((await fetch(`${url}/api/health?token=${token}`)).status, 200, "scripts may put the token in the query");
    const nav = await fetch(`${url}/?token=${token}&x=1`, { redirect: "manual", headers: { accept: "text/html" } });
    assert.equal(nav.status, 303);
    assert.equal(nav.headers.get("location"), "/?x=1", "the token leaves the address bar; other parameters stay");
    const cookie = nav.headers.get("set-cookie")!.split(";")[0];
    assert.equal((await fetch(`${url}/static/style.css`, { headers: { cookie } })).status, 200);
    const guide = await (await fetch(`${url}/api`, { headers: { cookie } })).text();
    assert.match(guide, /requires its access token/, "the API guide says how to authenticate");
    assert.ok(!guide.includes(token), "the guide never prints the token");
    const sneaky = await fetch(`${url}/.//evil.example/?token=${token}`, { redirect: "manual", headers: { accept: "text/html" } });
    assert.equal(sneaky.headers.get("location"), "/", "no open redirect to another host");
    const s = await outcome(socket(url));
    assert.equal(s.connected, false);
    assert.equal(!s.connected && handshakeStatus(s.error), 401);
    assert.equal((await outcome(socket(url, { extraHeaders: { authorization: `Bearer ${token}` } }))).connected, true);
    assert.equal((await outcome(socket(url, { query: { token } }))).connected, true);
    assert.equal((await outcome(socket(url, { extraHeaders: { cookie } }))).connected, true);
  });

  it("locks out an address that keeps presenting wrong credentials (429), over HTTP and Socket.IO", T, async () => {
    const token = "right-token-0123456789";
    const { url } = await serve({ token, auth: "ann:pw", trustProxy: ["127.0.0.1", "::1"] });
    const me = { "x-forwarded-for": "203.0.113.7" }; // through a proxy named by --trust-proxy
    for (let i = 0; i < 20; i++) assert.equal((await fetch(`${url}/api/health`, { headers: { ...me, authorization: `Bearer guess-${i}-xxxxxxxx` } })).status, 401);
    const locked = await fetch(`${url}/api/health`, { headers: { ...me, authorization: `Bearer ${token}` } });
    assert.equal(locked.status, 429);
    assert.ok(Number(locked.headers.get("retry-after")) > 0);
    const s = await outcome(socket(url, { query: { token }, extraHeaders: me }));
    assert.equal(!s.connected && handshakeStatus(s.error), 429);
    // Another address is not affected.
    assert.equal((await fetch(`${url}/api/health`, { headers: { "x-forwarded-for": "198.51.100.1", authorization: `Bearer ${token}` } })).status, 200);
  });

  it("an unauthenticated client gets no Engine.IO session: its handshake is refused before one exists; handshakes count against the rate limit", T, async () => {
    const token = "right-token-0123456789";
    const { port } = await serve({ token, rateLimit: 6 });
    const get = (target: string, extra = "") => raw(port, `GET ${target} HTTP/1.1\r\nHost: localhost\r\n${extra}Connection: close\r\n\r\n`);
    const none = await get("/socket.io/?EIO=4&transport=polling"); // 1 (numbers: handshakes counted)
    assert.equal(none.status, 401);
    assert.match(none.text, /"error":"unauthorized"/);
    assert.doesNotMatch(none.text, /"sid"/, "no session was made");
    const upgrade = await get("/socket.io/?EIO=4&transport=websocket", "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"); // 2
    assert.equal(upgrade.status, 401, "a websocket upgrade without credentials is answered 401, not upgraded");
    for (const empty of ["&sid=", "&sid"]) assert.equal((await get(`/socket.io/?EIO=4&transport=polling${empty}`)).status, 401, `an empty session id${empty} starts a new session, so it is judged too`); // 3, 4
    const ok = await get(`/socket.io/?EIO=4&transport=polling&token=${token}`); // 5
    assert.equal(ok.status, 200);
    assert.match(ok.text, /"sid"/);
    // A message to a session that was never granted is refused before its body is read.
    const t0 = performance.now();
    const big = await raw(port, `POST /socket.io/?EIO=4&transport=polling&sid=made-up HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: 11000000\r\nConnection: close\r\n\r\n${"x".repeat(1000)}`);
    assert.equal(big.status, 400);
    assert.ok(performance.now() - t0 < 2000);
    // Handshakes count: 5 so far, 1 more is allowed, then 429.
    const statuses: number[] = [];
    for (let i = 0; i < 2; i++) statuses.push((await get(`/socket.io/?EIO=4&transport=polling&token=${token}`)).status);
    assert.deepEqual(statuses, [200, 429]);
  });

  it("POST /login takes a form or JSON; any other body is refused clearly and never counts as a wrong guess", T, async () => {
    const { url } = await serve({ auth: "ann:pw" });
    const login = (type: string, body: string) => fetch(`${url}/login`, { method: "POST", headers: { "content-type": type }, body });
    // More refused bodies than the lockout allows wrong guesses (20): none of them counts.
    for (let i = 0; i < 12; i++) {
      for (const [type, body] of [["text/plain", "username=ann&password=pw"], ["application/json", "{not json"], ["application/json", '"just a string"']]) {
        const r = await login(type, body);
        assert.equal(r.status, 400, `${type} ${body}`);
        assert.match(((await r.json()) as { message: string }).message, /form .* or JSON/);
      }
    }
    const ok = await login("application/json", JSON.stringify({ username: "ann", password: "pw" }));
    assert.equal(ok.status, 200, "right credentials as JSON sign in, and nothing above locked the address out");
    assert.deepEqual(await ok.json(), { success: true });
    assert.match(ok.headers.get("set-cookie") ?? "", /^caption_studio_/);
    assert.equal((await login("application/json", JSON.stringify({ username: "ann", password: "nope" }))).status, 401);
    assert.equal((await login("application/x-www-form-urlencoded", "username=ann&password=pw")).status, 200);
  });
});

describe("Gradio clients under access control", () => {
  it("@gradio/client signs in with auth: [user, pass] (POST /login) or a bearer header; without, it is refused", T, async () => {
    const token = "gradio-token-0123456789";
    const { url } = await serve({ auth: "ann:pw-123", token, beam: 1, maxLen: 6 });
    await assert.rejects(GradioClient.connect(`${url}/`), /credentials are required/);
    await assert.rejects(GradioClient.connect(`${url}/`, { auth: ["ann", "wrong"] }), /Invalid credentials/);
    for (const options of [{ auth: ["ann", "pw-123"] as [string, string] }, { headers: { Authorization: `Bearer ${token}` } }]) {
      const client = await GradioClient.connect(`${url}/`, options);
      const result = await client.predict("/predict", [handle_file(JPEG)]);
      assert.equal(typeof (result.data as unknown[])[0], "string");
      client.close();
    }
  });
});

describe("rate limiting per client address", () => {
  it("believes X-Forwarded-For only from the studio's own tunnel or a proxy named by --trust-proxy, never merely from loopback", () => {
    const peer = (remoteAddress: string) => ({ remoteAddress });
    assert.equal(clientAddress(peer("127.0.0.1"), "203.0.113.9"), "127.0.0.1", "any local process may write the header");
    const tunnel = peer("127.0.0.1");
    tunnelConnections.add(tunnel);
    assert.equal(clientAddress(tunnel, "203.0.113.9"), "203.0.113.9");
    assert.equal(clientAddress(tunnel, "6.6.6.6, 203.0.113.9"), "203.0.113.9", "a forged left part is ignored");
    assert.equal(clientAddress(tunnel, undefined), "127.0.0.1");
    const proxy = ["127.0.0.1", "198.51.100.4"];
    assert.equal(clientAddress(peer("::ffff:127.0.0.1"), "203.0.113.9, 127.0.0.1", proxy), "203.0.113.9", "a chain of trusted proxies");
    assert.equal(clientAddress(peer("::ffff:127.0.0.1"), "203.0.113.9, 10.0.0.1", proxy), "10.0.0.1", "the nearest untrusted hop is the client");
    assert.equal(clientAddress(peer("198.51.100.4"), "203.0.113.9", proxy), "203.0.113.9");
    assert.equal(clientAddress(peer("198.51.100.5"), "203.0.113.9", proxy), "198.51.100.5", "an unlisted peer is the client");
    assert.equal(clientAddress(peer("::1"), undefined, proxy), "::1");
  });

  it("the share tunnel's entry trusts only connections from this process (the tunnel client), not another local process", T, async () => {
    const { studio } = await serve({ rateLimit: 2 });
    const entry = await studio.tunnelEntry();
    const request = (xff: string, host: string) => `GET /api/health HTTP/1.1\r\nHost: ${host}\r\nX-Forwarded-For: ${xff}\r\nConnection: close\r\n\r\n`;
    // In-process, as the tunnel client is: each forwarded address is its own client, and the public Host is served.
    for (let i = 0; i < 4; i++) assert.equal((await raw(entry.port, request(`203.0.113.${i}`, "abc.loca.lt"))).status, 200, `tunnel request ${i}`);
    // From another process: a plain local client; the public Host is refused, and forged addresses share one budget.
    const child = (xff: string, host: string) => new Promise<number>((resolve, reject) => {
      const code = `const s=require("net").connect(${entry.port},"127.0.0.1",()=>s.write(${JSON.stringify(request("%XFF%", "%HOST%"))}.replace("%XFF%",process.argv[1]).replace("%HOST%",process.argv[2])));let d="";s.on("data",(c)=>d+=c);s.on("close",()=>{process.stdout.write(d.slice(9,12))});`;
      const p = spawn(process.execPath, ["-e", code, xff, host]);
      let out = "";
      p.stdout.on("data", (d) => (out += d));
      p.on("exit", () => resolve(Number(out)));
      p.on("error", reject);
    });
    assert.equal(await child("203.0.113.50", "abc.loca.lt"), 403, "another process gets no Host exemption");
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push(await child(`198.51.100.${i}`, "localhost"));
    assert.deepEqual(statuses, [200, 200, 429], "another process's forged addresses are not believed: one budget of 2");
  });

  it("a local client that forges X-Forwarded-For gets no fresh budget or lockout count from it", T, async () => {
    const token = "right-token-0123456789";
    const { url } = await serve({ token });
    // 25 wrong guesses, each with a new forged address: the 21st is already locked out (the lockout allows 20).
    const statuses: number[] = [];
    for (let i = 0; i < 25; i++) statuses.push((await fetch(`${url}/api/health`, { headers: { "x-forwarded-for": `203.0.113.${i}`, authorization: `Bearer guess-${i}-xxxxxxxx` } })).status);
    assert.deepEqual(statuses.slice(0, 20), Array(20).fill(401));
    assert.ok(statuses.slice(20).every((st) => st === 429), `after 20 wrong guesses: ${statuses.slice(20)}`);
    // The rate limit counts the same address whatever the header says: 5 a minute, then 429.
    const limited = await serve({ rateLimit: 5 });
    const more: number[] = [];
    for (let i = 0; i < 8; i++) more.push((await fetch(`${limited.url}/api/health`, { headers: { "x-forwarded-for": `198.51.100.${i}` } })).status);
    assert.deepEqual(more, [200, 200, 200, 200, 200, 429, 429, 429]);
  });

  it("answers 429 over the limit with Retry-After, counting HTTP, connections and captions together", T, async () => {
    const { url } = await serve({ rateLimit: 6, trustProxy: ["127.0.0.1", "::1"] });
    const a = { "x-forwarded-for": "203.0.113.1" };
    for (let i = 0; i < 3; i++) assert.equal((await fetch(`${url}/api/health`, { headers: a })).status, 200);
    const s = socket(url, { extraHeaders: a });
    assert.equal((await outcome(s)).connected, true); // 4
    const first = await caption(s, { image: JPEG, beam: 1, maxLen: 3 }); // 5
    assert.equal(first.ack.ok, true);
    await first.end;
    const second = await caption(s, { image: JPEG, beam: 1, maxLen: 3 }); // 6
    assert.equal(second.ack.ok, true);
    await second.end;
    const third = await caption(s, { image: JPEG, beam: 1, maxLen: 3 }); // 7: over
    assert.equal(third.ack.ok, false);
    assert.equal(!third.ack.ok && third.ack.code, "rate_limited");
    const res = await fetch(`${url}/api/health`, { headers: a });
    assert.equal(res.status, 429);
    assert.ok(Number(res.headers.get("retry-after")) > 0);
    assert.equal(((await res.json()) as { error: string }).error, "rate_limited");
    const again = await outcome(socket(url, { extraHeaders: a }));
    assert.equal(!again.connected && handshakeStatus(again.error), 429);
    // Another client address has its own budget.
    assert.equal((await fetch(`${url}/api/health`, { headers: { "x-forwarded-for": "203.0.113.2" } })).status, 200);
  });
});

describe("Socket.IO message size limit", () => {
  it("drops a client that sends an oversized message; the server and other clients carry on", T, async () => {
    const { url } = await serve({ uploadLimit: 200_000 }); // messages up to 200 kB + 1 MB of envelope
    const bystander = socket(url);
    assert.equal((await outcome(bystander)).connected, true);
    const big = socket(url);
    assert.equal((await outcome(big)).connected, true);
    const reason = new Promise<string>((resolve) => big.once("disconnect", (r) => resolve(r)));
    big.emit("caption", { image: Buffer.alloc(3 * 1024 * 1024, 1) });
    assert.equal(await reason, "transport close");
    const { ack, end } = await caption(bystander, { image: JPEG, beam: 1, maxLen: 3 });
    assert.equal(ack.ok, true);
    assert.ok("caption" in (await end));
    // Under the envelope but over the upload limit: refused politely, connection kept.
    const tooBig = await caption(bystander, { image: Buffer.alloc(300_000, 1) });
    assert.equal(!tooBig.ack.ok && tooBig.ack.code, "too_large");
    assert.equal(bystander.connected, true);
  });
});

describe("error answers and files", () => {
  const post = (target: string, type: string, body: string, extra = "") => `POST ${target} HTTP/1.1\r\nContent-Type: ${type}\r\n${extra}Content-Length: ${Buffer.byteLength(body, "latin1")}\r\n\r\n${body}`;
  const nested = (depth: number) => "[".repeat(depth) + "0" + "]".repeat(depth);
  const hostile = [
    "GET /static/%E0%A4%A HTTP/1.1",
    "GET /%ff HTTP/1.1",
    "GET /static/../package.json HTTP/1.1",
    "GET /static/..%2f..%2fpackage.json HTTP/1.1",
    "GET /static/..%5c..%5cpackage.json HTTP/1.1",
    "GET /static/%2e%2e/server/app.ts HTTP/1.1",
    "GET /static/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd HTTP/1.1",
    "GET /static/....//....//package.json HTTP/1.1",
    "GET /static/app.js%00.png HTTP/1.1",
    "GET /static/ HTTP/1.1",
    "GET /static/.gitkeep HTTP/1.1",
    "GET /package.json HTTP/1.1",
    "GET /server/app.ts HTTP/1.1",
    "GET /views/index.ejs HTTP/1.1",
    "GET /.git/config HTTP/1.1",
    "GET /node_modules/express/package.json HTTP/1.1",
    "GET /model/weights/model-card.json HTTP/1.1",
    "GET /api/results/..%2f..%2fpackage.json/picture.png HTTP/1.1",
    "GET /socket.io/../package.json HTTP/1.1",
    "GET /socket.io/?EIO=9&transport=polling HTTP/1.1",
    "GET http://evil.example/package.json HTTP/1.1",
    post("/api/caption", "multipart/form-data", "hello"),
    post("/api/caption", "multipart/form-data; boundary=x", "--x\r\nbroken part no end"),
    post("/api/caption?beam=%00", "image/jpeg", "\xff\xd8\xff"),
    post("/login", "multipart/form-data", "%%%%%%%%%"),
    post("/login", "multipart/form-data; boundary=y", `--y\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\nx\r\n--y--\r\n`),
    post("/api/caption", "image/jpeg", "not brotli at all", "Content-Encoding: br\r\n"),
    post("/gradio_api/queue/join", "application/json", "not gzip", "Content-Encoding: gzip\r\n"),
    post("/gradio_api/call/predict", "application/json", "\x1f\x8b\x08\x00 truncated", "Content-Encoding: gzip\r\n"),
    post("/gradio_api/queue/join", "application/json", `{"fn_index": ${nested(20_000)}, "data": [], "session_hash": "abc"}`),
    "DELETE /api/health HTTP/1.1",
    "GET /api/health HTTP/1.1\r\nX-Bad: \x01\x02",
  ];

  it("answers hostile requests with a 4xx, without stack traces, paths or files from outside static/", T, async () => {
    const { port, url } = await serve();
    for (const line of hostile) {
      const request = line.includes("\r\n\r\n") ? line.replace("\r\n", "\r\nHost: localhost\r\nConnection: close\r\n") : `${line}\r\nHost: localhost\r\nConnection: close\r\n\r\n`;
      const { status, text } = await raw(port, request);
      assert.ok(status >= 400 && status < 500, `${JSON.stringify(line)}: ${status}\n${text.slice(0, 300)}`);
      const body = text.slice(text.indexOf("\r\n\r\n") + 4);
      assert.ok(!body.includes(ROOT) && !/\n\s+at |node:internal|\.[jt]s:\d+:\d+/.test(body), `${JSON.stringify(line)} leaks internals:\n${body.slice(0, 400)}`);
      assert.ok(!body.includes('"name": "caption-studio"') && !body.includes("[core]") && !body.includes("root:x:0"), `${JSON.stringify(line)} served a file outside static/`);
    }
    assert.equal((await fetch(`${url}/api/health`)).status, 200, "still up");
  });

  it("an upload its client cuts off logs one line, with no stack trace", T, async () => {
    const { port } = await serve();
    const logged: string[] = [];
    const [warn, error] = [console.warn, console.error];
    console.warn = console.error = (...args: unknown[]) => void logged.push(args.map(String).join(" "));
    try {
      for (const [n, [target, field]] of [["/api/caption", "image"], ["/gradio_api/upload", "files"]].entries()) {
        await new Promise<void>((resolve) => {
          const s = net.connect(port, "127.0.0.1", () => {
            s.write(`POST ${target} HTTP/1.1\r\nHost: localhost\r\nContent-Type: multipart/form-data; boundary=zz\r\nContent-Length: 100000\r\n\r\n--zz\r\nContent-Disposition: form-data; name="${field}"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n${"x".repeat(5000)}`);
            setTimeout(() => s.destroy(), 200); // mid-body: the server has started reading the upload
          });
          s.on("close", () => resolve());
        });
        await waitFor(() => logged.length > n, 10_000); // the server's line for this upload
      }
      await new Promise((r) => setTimeout(r, 200)); // room for any stray second line to show up
    } finally {
      [console.warn, console.error] = [warn, error];
    }
    assert.equal(logged.length, 2, logged.join("\n---\n"));
    for (const line of logged) assert.ok(!line.includes("\n") && !/\bat /.test(line), `one line, no stack: ${line}`);
  });

  it("refuses files whose decoding cost is not bounded by their pixels (thousands of JPEG scans or TIFF pages) at once; ordinary ones caption", T, async () => {
    const { url } = await serve({ concurrency: 1 });
    const progressive = await sharp(JPEG).resize(48, 48).jpeg({ progressive: true }).toBuffer();
    const post = (body: Buffer) => fetch(`${url}/api/caption?beam=1&maxLen=3`, { method: "POST", headers: { "content-type": "application/octet-stream" }, body: new Uint8Array(body) });
    for (const [what, bytes, message] of [
      ["2,000-scan JPEG", manyScanJpeg(progressive, 2000), /more than 64 scans/],
      ["50,000-page TIFF", manyPageTiff(50_000), /more than 100 pages/],
    ] as const) {
      const t0 = performance.now();
      const r = await post(bytes);
      const ms = performance.now() - t0;
      const body = (await r.json()) as { error: string; message: string };
      assert.equal(r.status, 400, `${what}: ${JSON.stringify(body)}`);
      assert.equal(body.error, "bad_image");
      assert.match(body.message, message);
      assert.ok(ms < 2000, `${what} answered in ${ms.toFixed(0)} ms`);
    }
    for (const [what, bytes] of [["progressive JPEG", progressive], ["3-page TIFF", manyPageTiff(3)]] as const) {
      const r = await post(bytes);
      assert.equal(r.status, 200, `${what}: ${await r.text()}`);
    }
  });

  it("serves only the gallery's own photos: no symlinks, no subfolders", T, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "studio-examples-"));
    try {
      writeFileSync(path.join(dir, "real.jpg"), JPEG);
      symlinkSync("/etc/passwd", path.join(dir, "link.jpg"));
      symlinkSync(path.join(dir, "real.jpg"), path.join(dir, "alias.jpg"));
      mkdirSync(path.join(dir, "sub"));
      writeFileSync(path.join(dir, "sub", "inner.jpg"), JPEG);
      const { url } = await serve({ examplesDir: dir });
      const ok = await fetch(`${url}/examples/real.jpg`);
      assert.equal(ok.status, 200);
      assert.deepEqual(Buffer.from(await ok.arrayBuffer()), JPEG);
      for (const name of ["link.jpg", "alias.jpg", "sub/inner.jpg", "sub%2Finner.jpg", "..%2Freal.jpg", "missing.jpg", "sub"]) {
        const r = await fetch(`${url}/examples/${name}`);
        const body = await r.text();
        assert.equal(r.status, 404, `${name}: ${r.status}`);
        assert.ok(!body.includes("root:x:0"), `${name} served /etc/passwd`);
      }
      const page = await (await fetch(`${url}/`)).text();
      assert.match(page, /examples\/real\.jpg/);
      assert.ok(!/examples\/(link|alias)\.jpg/.test(page), "the gallery lists no symlinks");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("on loopback, answers only requests addressed to a loopback name (DNS-rebinding guard), HTTP and Socket.IO alike", T, async () => {
    const { port, url } = await serve();
    const get = async (host: string, target = "/") => (await raw(port, `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)).status;
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, `studio.localhost:${port}`, "localhost"]) assert.equal(await get(host), 200, host);
    for (const host of [`evil.example:${port}`, "evil.example", `127.0.0.1.evil.example:${port}`, `localhost.evil.example:${port}`]) {
      const { status, text } = await raw(port, `GET /api/health HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      assert.equal(status, 403, host);
      assert.match(text, /"forbidden".*DNS-rebinding/s);
      assert.equal(await get(host, "/socket.io/?EIO=4&transport=polling"), 403, `${host}: the Socket.IO handshake too`);
    }
    assert.equal(await get(`localhost:${port}`, "/socket.io/?EIO=4&transport=polling"), 200);
    assert.equal((await fetch(`${url}/api/health`)).status, 200);
    // Listening on all interfaces, the names a network gives the machine are its own business.
    const lan = await serve({ host: "0.0.0.0" });
    assert.equal((await raw(lan.port, `GET /api/health HTTP/1.1\r\nHost: my-box.lan:${lan.port}\r\nConnection: close\r\n\r\n`)).status, 200);
  });

  it("keeps secrets out of answers: a 404 does not echo the query, the cookie's name reveals nothing of it or its value", T, async () => {
    const token = "secret-token-abcdefgh-0123456789";
    const { url } = await serve({ token });
    for (const target of [`/api/nope?token=${token}`, `/gradio_api/nope?token=${token}`]) {
      const r = await fetch(`${url}${target}`);
      assert.equal(r.status, 404, target);
      const body = await r.text();
      assert.ok(!body.includes(token) && !body.includes("token="), `${target} echoed: ${body}`);
      assert.match(body, /no such endpoint/);
    }
    const nav = await fetch(`${url}/?token=${token}`, { redirect: "manual", headers: { accept: "text/html" } });
    const [name, value] = nav.headers.get("set-cookie")!.split(";")[0].split("=");
    assert.ok(value.length >= 32);
    assert.ok(!name.includes(token.slice(0, 8)) && !name.includes(value.slice(0, 8).replace(/[-_]/g, "x")) && !name.includes(value.slice(0, 8)), `cookie name ${name} for value ${value.slice(0, 8)}…`);
  });
});

describe("SIGTERM drains (npm start)", () => {
  it("in-flight captions finish, new ones are refused, and the process exits cleanly", { timeout: 240_000 }, async () => {
    const child = spawnNpmStart(["--port=0", "--rate-limit=0", "--concurrency=2"]);
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      const t0 = Date.now();
      while (!/Running on local URL: +(http:\/\/\S+)/.test(out)) {
        if (child.exitCode !== null || Date.now() - t0 > 150_000) throw new Error(`did not start:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const url = /Running on local URL: +(http:\/\/\S+)/.exec(out)![1];
      const [a, b, idle] = [socket(url), socket(url), socket(url)];
      for (const s of [a, b, idle]) assert.equal((await outcome(s)).connected, true);
      // Two socket captions and two HTTP ones: with concurrency 2, two run and two wait.
      const agent = new http.Agent({ keepAlive: true });
      const post = (img: Buffer) =>
        new Promise<number>((resolve, reject) => {
          const req = http.request(`${url}/api/caption?beam=3&maxLen=30`, { method: "POST", agent, headers: { "content-type": "image/jpeg" } }, (res) => {
            res.resume();
            res.on("end", () => resolve(res.statusCode!));
          });
          req.on("error", reject);
          req.end(img);
        });
      const jobs = [caption(a, { image: PHOTOS[1], beam: 3, maxLen: 30 }), caption(b, { image: PHOTOS[2], beam: 3, maxLen: 30 })];
      const posts = [post(PHOTOS[3]), post(PHOTOS[0])];
      const acks = await Promise.all(jobs);
      acks.forEach((j) => assert.equal(j.ack.ok, true));
      for (const t1 = Date.now(); Date.now() - t1 < 10_000; ) {
        const h = (await (await fetch(`${url}/api/health`)).json()) as { queue: { running: number; waiting: number } };
        if (h.queue.running + h.queue.waiting >= 4) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      child.kill("SIGTERM");
      await new Promise((r) => setTimeout(r, 100));
      const refused = await caption(idle, { image: JPEG, beam: 1 });
      assert.equal(!refused.ack.ok && refused.ack.code, "shutting_down", "a new caption is refused");
      const fresh = await fetch(`${url}/api/health`).then((r) => r.status, (e: Error) => (e.cause as { code?: string })?.code ?? e.message);
      assert.ok(fresh === 503 || fresh === "ECONNREFUSED", `a new connection is refused (${fresh})`);
      for (const j of acks) {
        const end = await j.end;
        assert.ok("caption" in end, `the in-flight socket caption finished: ${JSON.stringify(end)}`);
      }
      assert.deepEqual(await Promise.all(posts), [200, 200], "the in-flight HTTP captions finished");
      assert.equal(await exited, 0, out);
      const finishing = Number(/SIGTERM: finishing (\d+) job\(s\), refusing new ones\.\.\.\n[\s\S]*Stopped\./.exec(out)?.[1]);
      assert.ok(finishing >= 3, `several jobs were in flight at SIGTERM (${finishing}):\n${out}`);
      agent.destroy();
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});
