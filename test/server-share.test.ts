/**
 * The share link (server/share/), for real, on loopback: a localtunnel server in this process
 * (test/tunnel-server.ts) stands in for localtunnel.me, and the studio's share code talks to it
 * with the real localtunnel client code. Through the public URL: the page, static files, the API
 * and the Socket.IO stream over a websocket; access control over HTTP and Socket.IO; a client
 * vanishing mid-caption; a dropped tunnel reconnecting; the link expiring; providers that cannot
 * work; and `npm start -- --share` end to end. Nothing here touches the internet.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium } from "playwright-core";
import { tf } from "../model/tf.ts";
import type { StudioApp } from "../server/app.ts";
import type { ServerConfig } from "../server/config.ts";
import type { CaptionAck, DoneEvent, FailedEvent } from "../server/events.ts";
import { startShare } from "../server/share/index.ts";
import { TunnelServer } from "./tunnel-server.ts";
import { connected, DATA, handshakeStatus, openClient, studioFixture, type Client } from "./support/studio.ts";
import { spawnNpmStart } from "./support/npm-start.ts";

const IMAGES = path.join(DATA, "images");
const PHOTO = path.join(IMAGES, readdirSync(IMAGES).filter((n) => n.endsWith(".jpg")).sort()[2]);
const JPEG = readFileSync(PHOTO);
const CHROMIUM = "/usr/bin/chromium";
const T = { timeout: 120_000 };
/** Fast reconnects for the tests. */
const BACKOFF = { firstMs: 100, maxMs: 500 };

const { serve: serveStudio, track } = studioFixture();
let tunnels: TunnelServer;

async function serve(overrides: Partial<ServerConfig>): Promise<{ studio: StudioApp; config: ServerConfig; port: number }> {
  const { studio, config, port } = await serveStudio({ shareHost: tunnels.url, ...overrides });
  return { studio, config, port };
}

/** A studio shared through the loopback tunnel server; resolves with the printed link. */
async function shared(overrides: Partial<ServerConfig> = {}) {
  const { studio, config, port } = await serve({ share: true, ...overrides });
  const logs: string[] = [];
  const entry = await studio.tunnelEntry(); // as server/index.ts does: the tunnel's own way in
  // Closed with the clients, before the studios.
  const share = track(startShare({ config, localPort: entry.port, localHost: entry.host, linkQuery: studio.access.linkQuery, log: (l) => logs.push(l), backoff: BACKOFF, openTimeoutMs: 5000 }));
  const link = await share.ready;
  assert.ok(link, `the share opened: ${logs.join("\n")}`);
  const publicUrl = new URL(link);
  const id = publicUrl.hostname.split(".")[0];
  return { studio, config, port, share, logs, link, origin: publicUrl.origin, id };
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
  json: () => Record<string, unknown>;
}

/** An HTTP request through the tunnel (the agent resolves *.localhost). */
function request(url: string, { method = "GET", headers = {}, body }: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent: tunnels.agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        const b = Buffer.concat(chunks);
        resolve({ status: res.statusCode!, headers: res.headers, body: b, text: b.toString(), json: () => JSON.parse(b.toString()) });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}

const cookieOf = (r: Reply) => (r.headers["set-cookie"] ?? []).map((c) => c.split(";")[0]).join("; ");

/** A socket.io-client socket through the tunnel, websocket only. */
function socketTo(origin: string, opts: { query?: Record<string, string>; headers?: Record<string, string> } = {}): Client {
  return track(openClient(origin, { agent: tunnels.agent as never, query: opts.query, extraHeaders: opts.headers }));
}

/** The HTTP status of a refused handshake. */
function refused(socket: Client): Promise<number | undefined> {
  return connected(socket).then(() => Promise.reject(new Error("connected without credentials")), handshakeStatus);
}

/** Captions over a socket; resolves with done/failed and the number of steps seen. */
function caption(socket: Client, req: Record<string, unknown>, onStep?: () => void): Promise<{ end: DoneEvent | FailedEvent; steps: number; ack: CaptionAck }> {
  return new Promise((resolve) => {
    let id: string | null | undefined;
    let steps = 0;
    let ack!: CaptionAck;
    socket.on("step", (e) => {
      if (e.id !== id) return;
      steps++;
      onStep?.();
    });
    socket.on("done", (e) => e.id === id && resolve({ end: e, steps, ack }));
    socket.on("failed", (e) => e.id === id && resolve({ end: e, steps, ack }));
    socket.emit("caption", req as never, (a: CaptionAck) => {
      ack = a;
      id = a.ok ? a.id : null;
    });
  });
}

async function waitFor(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

before(async () => {
  tunnels = await TunnelServer.start();
});

after(async () => {
  // After the fixture has closed the clients, shares and studios.
  await tunnels?.close();
});

describe("share link through a loopback localtunnel server", () => {
  it("prints the public link with a generated token; page, static files, API and Socket.IO work through it", T, async () => {
    const { link, logs, origin, config, id } = await shared();
    assert.match(config.token ?? "", /^[A-Za-z0-9_-]{24}$/, "a token is generated when sharing");
    assert.match(link, new RegExp(`^http://${id}\\.localhost:${tunnels.port}/\\?token=${config.token}$`));
    assert.deepEqual(logs, [`* Running on public URL: ${link}`, "* This share link expires in 72 hours (--share-ttl)."]);
    assert.deepEqual(tunnels.created, ["/?new"]);

    // A browser opens the link: it gets the cookie and is sent to the same page without the token.
    const opened = await request(link, { headers: { accept: "text/html" } });
    assert.equal(opened.status, 303);
    assert.equal(opened.headers.location, "/");
    const cookie = cookieOf(opened);
    assert.match(opened.headers["set-cookie"]!.join(";"), /HttpOnly/i);
    assert.match(opened.headers["set-cookie"]!.join(";"), /SameSite=Lax/i);
    const page = await request(`${origin}/`, { headers: { cookie } });
    assert.equal(page.status, 200);
    assert.match(page.text, /Caption Studio/);
    assert.match(String(page.headers["content-security-policy"]), /default-src 'self'/);
    assert.equal((await request(`${origin}/static/app.js`, { headers: { cookie } })).status, 200);
    // The API guide shows the public address (the tunnel's X-Forwarded-* are trusted from loopback).
    const guide = await request(`${origin}/api`, { headers: { cookie } });
    assert.match(guide.text, new RegExp(`http://${id}\\.localhost:${tunnels.port}/api/caption`));

    // The HTTP API, with the token as a bearer token.
    const res = await request(`${origin}/api/caption?beam=1&maxLen=6`, { method: "POST", headers: { authorization: `Bearer ${config.token}`, "content-type": "image/jpeg" }, body: JPEG });
    assert.equal(res.status, 200, res.text);
    assert.ok((res.json().words as unknown[]).length > 0);

    // The Socket.IO stream over a websocket, with the token in the handshake, and with the cookie.
    const before = tunnels.forwarded.get(id) ?? 0;
    const ways: { query?: Record<string, string>; headers?: Record<string, string> }[] = [{ query: { token: config.token! } }, { headers: { authorization: `Bearer ${config.token}` } }, { headers: { cookie } }];
    for (const opts of ways) {
      const socket = socketTo(origin, opts);
      await connected(socket);
      assert.equal(socket.io.engine.transport.name, "websocket");
      const { end, steps } = await caption(socket, { image: JPEG, beam: 1, maxLen: 8 });
      assert.ok("caption" in end, JSON.stringify(end));
      assert.equal(steps, end.words.length);
      socket.close();
    }
    assert.ok((tunnels.forwarded.get(id) ?? 0) >= before + 3, "the sockets went through the tunnel");
  });

  it("counts each public client by the address the tunnel's edge gives, whatever X-Forwarded-For the client wrote itself", T, async () => {
    const { origin, port } = await shared({ shareAuth: false, rateLimit: 4 });
    try {
      tunnels.edgeAddress = "203.0.113.77";
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await request(`${origin}/api/health`, { headers: { "x-forwarded-for": `198.51.100.${i}` } })).status);
      assert.deepEqual(statuses, [200, 200, 200, 200, 429, 429], "a forged header buys no fresh budget");
      tunnels.edgeAddress = "203.0.113.78";
      assert.equal((await request(`${origin}/api/health`)).status, 200, "another public client has its own budget");
      // Directly on loopback, the same header names no one: this local client has its own budget, untouched above.
      assert.equal((await fetch(`http://127.0.0.1:${port}/api/health`, { headers: { "x-forwarded-for": "203.0.113.77" } })).status, 200);
    } finally {
      tunnels.edgeAddress = null;
    }
  });

  it("enforces access control through the tunnel: 401 over HTTP, connect_error over Socket.IO", T, async () => {
    const { origin, config } = await shared();
    for (const p of ["/", "/api", "/static/app.js", "/api/health", "/config", "/gradio_api/info", "/nope"]) {
      const r = await request(`${origin}${p}`);
      assert.equal(r.status, 401, `${p} without credentials`);
      assert.doesNotMatch(r.text, new RegExp(config.token!), "the 401 does not leak the token");
    }
    const json = await request(`${origin}/api/health`);
    assert.equal(json.json().error, "unauthorized");
    assert.equal(json.headers["www-authenticate"], undefined, "token mode: no password prompt");
    assert.equal((await request(`${origin}/?token=wrong-token-123`)).status, 401);
    assert.equal((await request(`${origin}/api/health`, { headers: { authorization: "Bearer wrong-token-123" } })).status, 401);
    assert.equal((await request(`${origin}/api/health`, { headers: { cookie: "caption_studio_x=forged" } })).status, 401);
    const post = await request(`${origin}/api/caption`, { method: "POST", headers: { "content-type": "image/jpeg" }, body: JPEG });
    assert.equal(post.status, 401);

    assert.equal(await refused(socketTo(origin)), 401);
    assert.equal(await refused(socketTo(origin, { query: { token: "wrong-token-123" } })), 401);
    // The right token still works (one bad guess does not lock anyone out).
    assert.equal((await request(`${origin}/api/health`, { headers: { authorization: `Bearer ${config.token}` } })).status, 200);
  });

  it("with --auth user:pass: HTTP Basic, Gradio's POST /login, and Basic on the Socket.IO handshake", T, async () => {
    const { origin, link, config } = await shared({ auth: "ann:s3cret pass" });
    assert.equal(config.token, null, "no token is generated when --auth is given");
    assert.equal(link, `${origin}/`, "the link carries no token");
    const challenge = await request(`${origin}/`);
    assert.equal(challenge.status, 401);
    assert.match(String(challenge.headers["www-authenticate"]), /^Basic realm="Caption Studio"/);
    const basic = `Basic ${Buffer.from("ann:s3cret pass").toString("base64")}`;
    const page = await request(`${origin}/`, { headers: { authorization: basic } });
    assert.equal(page.status, 200);
    assert.equal((await request(`${origin}/`, { headers: { authorization: `Basic ${Buffer.from("ann:nope").toString("base64")}` } })).status, 401);
    // The cookie set with the page carries the session on (static files, API, the websocket).
    assert.equal((await request(`${origin}/api/health`, { headers: { cookie: cookieOf(page) } })).status, 200);

    const form = (u: string, p: string) => `username=${encodeURIComponent(u)}&password=${encodeURIComponent(p)}`;
    const good = await request(`${origin}/login`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: form("ann", "s3cret pass") });
    assert.equal(good.status, 200);
    assert.deepEqual(good.json(), { success: true });
    assert.equal((await request(`${origin}/api/health`, { headers: { cookie: cookieOf(good) } })).status, 200);
    const bad = await request(`${origin}/login`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: form("ann", "guess") });
    assert.equal(bad.status, 401);

    const socket = socketTo(origin, { headers: { authorization: basic } });
    await connected(socket);
    socket.close();
    assert.equal(await refused(socketTo(origin)), 401);
  });

  it("a client that vanishes mid-caption through the tunnel frees its job and tensors", T, async () => {
    const { origin, config, studio } = await shared();
    const warm = socketTo(origin, { query: { token: config.token! } });
    await connected(warm);
    await caption(warm, { image: JPEG, beam: 1, maxLen: 4 });
    warm.close();
    await waitFor(() => studio.jobs.stats.running + studio.jobs.stats.waiting === 0, "idle");
    const tensors = tf.memory().numTensors;

    const socket = socketTo(origin, { query: { token: config.token! } });
    await connected(socket);
    let vanished = false;
    void caption(socket, { image: JPEG, beam: 5, maxLen: 40 }, () => {
      if (vanished) return;
      vanished = true;
      socket.io.engine.close(); // the transport goes away without a Socket.IO goodbye
    });
    await waitFor(() => vanished, "a first step");
    await waitFor(() => studio.jobs.stats.running + studio.jobs.stats.waiting === 0, "the job to be cancelled");
    assert.equal(tf.memory().numTensors, tensors);
  });

  it("reconnects with backoff after the tunnel drops, keeping its URL", T, async () => {
    const { origin, config, id, logs, share } = await shared();
    const auth = { authorization: `Bearer ${config.token}` };
    assert.equal((await request(`${origin}/api/health`, { headers: auth })).status, 200);
    tunnels.drop(id);
    await waitFor(() => logs.some((l) => l.startsWith("share: reconnected")), "a reconnect");
    const dropped = logs.find((l) => l.startsWith("share: the tunnel dropped"));
    assert.match(dropped ?? "", /^share: the tunnel dropped \(.+\); reconnecting in \d+\.\d s\.$/);
    assert.ok(logs.includes(`share: reconnected (${origin}/).`), logs.join("\n"));
    assert.ok(tunnels.created.includes(`/${id}`), "asked for the same name again");
    assert.equal(share.state, "open");
    await waitFor(() => tunnels.connections(id) > 0, "tunnel connections");
    assert.equal((await request(`${origin}/api/health`, { headers: auth })).status, 200);
  });

  it("closes the link after --share-ttl; the studio keeps running locally", T, async () => {
    const { share, logs, id, port, config, origin } = await shared({ shareTtlMs: 1500 });
    assert.ok(logs.includes("* This share link expires in 1.5 s (--share-ttl)."), logs.join("\n"));
    await waitFor(() => share.state === "expired", "the link to expire");
    await waitFor(() => logs.some((l) => /^share: the public link expired after 1\.5 s \(--share-ttl\)\. The studio keeps running locally\.$/.test(l)), "the expiry notice");
    await waitFor(() => tunnels.connections(id) === 0, "the tunnel connections to close");
    const publicNow = await request(`${origin}/api/health`, { headers: { authorization: `Bearer ${config.token}` } });
    assert.notEqual(publicNow.status, 200);
    const local = await fetch(`http://127.0.0.1:${port}/api/health`, { headers: { authorization: `Bearer ${config.token}` } });
    assert.equal(local.status, 200);
  });
});

describe("the share link in Chromium", { skip: existsSync(CHROMIUM) ? false : `Chromium not found at ${CHROMIUM}` }, () => {
  it("opening the printed link: the token leaves the address bar, and the page captions over the tunnel", T, async () => {
    const { link, origin, id } = await shared();
    // Chromium resolves *.localhost to loopback itself; the rule only makes that explicit.
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--host-resolver-rules=MAP *.localhost 127.0.0.1"] });
    try {
      const stranger = await (await browser.newContext()).newPage();
      assert.equal((await stranger.goto(`${origin}/`))?.status(), 401, "without the token: 401");

      const errors: string[] = [];
      const page = await (await browser.newContext()).newPage();
      page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
      page.on("console", (m) => m.type() === "error" && errors.push(`console: ${m.text()}`));
      const before = tunnels.forwarded.get(id) ?? 0;
      await page.goto(link);
      assert.equal(page.url(), `${origin}/`, "redirected to the page without ?token");
      await page.evaluate(() => document.addEventListener("studio:done", (e) => ((window as unknown as { done: unknown }).done = (e as CustomEvent).detail)));
      await page.setInputFiles("#file", PHOTO);
      await page.waitForFunction(() => (window as unknown as { done: unknown }).done, null, { timeout: 60_000 });
      const words = await page.$$eval("#caption .word", (els) => els.length);
      assert.ok(words > 0, "the caption streamed in");
      assert.ok((tunnels.forwarded.get(id) ?? 0) - before >= 5, "page, scripts and the socket all came through the tunnel");
      assert.deepEqual(errors, [], "no page errors or CSP violations");
    } finally {
      await browser.close();
    }
  });
});

describe("providers that cannot work say why in one line; the studio keeps running", () => {
  async function failing(overrides: Partial<ServerConfig>, expectState: "failed" | "connecting") {
    const { studio, config, port } = await serve({ share: true, ...overrides });
    const logs: string[] = [];
    const share = track(startShare({ config, localPort: port, linkQuery: studio.access.linkQuery, log: (l) => logs.push(l), backoff: { firstMs: 50, maxMs: 100 }, openTimeoutMs: 5000 }));
    await waitFor(() => logs.length > 0, "a message");
    await new Promise((r) => setTimeout(r, 600)); // several retries
    assert.equal(logs.length, 1, `one line, however many retries: ${logs.join("\n")}`);
    assert.equal(share.state, expectState);
    assert.equal(share.url, null);
    const local = await fetch(`http://127.0.0.1:${port}/api/health`, { headers: { authorization: `Bearer ${config.token}` } });
    assert.equal(local.status, 200, "the local server keeps running");
    await share.close();
    assert.equal(await share.ready, null);
    return logs[0];
  }

  it("localtunnel with its server offline", T, async () => {
    const closed = await TunnelServer.start();
    const url = closed.url;
    await closed.close();
    const line = await failing({ shareHost: url }, "connecting");
    assert.equal(line, `share: localtunnel could not open a tunnel: cannot reach ${url} (ECONNREFUSED). The studio keeps running locally; retrying in the background.`);
  });

  it("ngrok without an authtoken", T, async () => {
    const line = await failing({ shareProvider: "ngrok", shareHost: null }, "failed");
    assert.match(line, /^share: ngrok needs an authtoken: set NGROK_AUTHTOKEN \(.+\)[^\n]*\. The studio keeps running locally\.$/);
  });

  it("ngrok with its server offline", T, async () => {
    const line = await failing({ shareProvider: "ngrok", shareHost: "127.0.0.1:1", ngrokAuthtoken: "test-token-not-real" }, "connecting");
    assert.match(line, /^share: ngrok could not open a tunnel: .+\. The studio keeps running locally; retrying in the background\.$/);
  });
});

describe("npm start -- --share (server/index.ts)", () => {
  it("prints the public URL under the local one, serves through it, and SIGTERM closes both", { timeout: 180_000 }, async () => {
    const child = spawnNpmStart(["--port=0", "--share", `--share-host=${tunnels.url}`]);
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      await waitFor(() => /Running on public URL: +\S+/.test(out) || child.exitCode !== null, "the public URL", 150_000);
      const lines = out.split("\n");
      const local = lines.findIndex((l) => /^\* Running on local URL: +http:\/\/127\.0\.0\.1:\d+\/\?token=[\w-]+$/.test(l));
      const token = lines.findIndex((l) => /^\* Access token: +[\w-]{24} /.test(l));
      const pub = lines.findIndex((l) => /^\* Running on public URL: +http:\/\/\S+\.localhost:\d+\/\?token=[\w-]+$/.test(l));
      assert.ok(local >= 0 && token > local && pub > token, `local URL, then the token, then the public URL:\n${out}`);
      const link = /Running on public URL: +(\S+)/.exec(out)![1];
      const opened = await request(link, { headers: { accept: "text/html" } });
      assert.equal(opened.status, 303);
      const page = await request(new URL("/", link).href, { headers: { cookie: cookieOf(opened) } });
      assert.equal(page.status, 200);
      assert.equal((await request(new URL("/", link).href)).status, 401);
      const id = new URL(link).hostname.split(".")[0];
      child.kill("SIGTERM");
      assert.equal(await exited, 0, out);
      assert.match(out, /SIGTERM: finishing 0 job\(s\)[\s\S]*Stopped\./);
      await waitFor(() => tunnels.connections(id) === 0, "the tunnel to close");
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});
