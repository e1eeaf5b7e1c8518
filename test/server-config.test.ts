/**
 * Server settings (server/config.ts) and the `npm start` entry point (server/index.ts): flags
 * beat environment variables beat defaults; bad values fail naming the setting; the port falls
 * back to the next free one (or fails with --strict-port); SIGTERM stops the server cleanly.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { ConfigError, DEFAULTS, SETTINGS, helpText, loadConfig, makeConfig } from "../server/config.ts";
import { spawnNpmStart } from "./support/npm-start.ts";

describe("loadConfig", () => {
  it("has Gradio's defaults", () => {
    const c = loadConfig([], {});
    assert.equal(c.port, 7860);
    assert.equal(c.host, "127.0.0.1");
    assert.equal(c.uploadLimit, 10 * 1024 * 1024);
    assert.equal(c.strictPort, false);
    assert.deepEqual({ ...c, examplesDir: null }, { ...DEFAULTS, examplesDir: null });
    assert.ok(Object.isFrozen(c));
  });

  it("reads flags (both forms) and environment variables; flags win", () => {
    const env = { PORT: "9000", CAPTION_CONCURRENCY: "3", CAPTION_UPLOAD_LIMIT_MB: "0.5", CAPTION_BEAM: "1" };
    const c = loadConfig(["--port=8001", "--host", "0.0.0.0", "--max-queue", "5", "--strict-port"], env);
    assert.equal(c.port, 8001);
    assert.equal(c.host, "0.0.0.0");
    assert.equal(c.concurrency, 3);
    assert.equal(c.maxQueue, 5);
    assert.equal(c.uploadLimit, 512 * 1024);
    assert.equal(c.beam, 1);
    assert.equal(c.strictPort, true);
    assert.equal(loadConfig(["--no-strict-port"], { CAPTION_STRICT_PORT: "true" }).strictPort, false);
    assert.equal(loadConfig([], { CAPTION_STRICT_PORT: "yes" }).strictPort, true);
    assert.equal(loadConfig(["--upload-limit=2"], {}).uploadLimit, 2 * 1024 * 1024);
  });

  it("takes an examples folder, or '' to hide the gallery", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "studio-config-"));
    try {
      assert.equal(loadConfig(["--examples", dir], {}).examplesDir, dir);
      assert.equal(loadConfig([], { CAPTION_EXAMPLES: dir }).examplesDir, dir);
      assert.equal(loadConfig(["--examples="], {}).examplesDir, null);
      assert.throws(() => loadConfig(["--examples", path.join(dir, "missing")], {}), /examples: folder not found/);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  const bad: [string[], Record<string, string>, RegExp][] = [
    [["--prot=1"], {}, /unknown argument "--prot=1"; known flags: --port/],
    [["photo.jpg"], {}, /unknown argument/],
    [["--port=abc"], {}, /--port: port must be an integer/],
    [[], { PORT: "70000" }, /PORT: port must be between 0 and 65535/],
    [["--concurrency=0"], {}, /concurrency must be between 1/],
    [["--beam=5", "--max-beam=3"], {}, /beam \(5\) must not exceed maxBeam \(3\)/],
    [["--max-len=60"], {}, /maxLen must be between 1 and 50/],
    [["--upload-limit=-1"], {}, /uploadLimit must be between/],
    [["--strict-port=maybe"], {}, /must be true or false/],
    [["--port"], {}, /--port needs a value/],
    [["--no-port"], {}, /only for true\/false settings/],
    [["--host="], {}, /host must not be empty/],
  ];
  for (const [argv, env, pattern] of bad) {
    it(`refuses ${JSON.stringify(argv)} ${JSON.stringify(env)}`, () => {
      assert.throws(() => loadConfig(argv, env), (e: unknown) => e instanceof ConfigError && pattern.test(e.message));
    });
  }

  it("documents every setting in --help", () => {
    const help = helpText();
    for (const s of SETTINGS) {
      assert.ok(help.includes(`--${s.flag}`), s.flag);
      for (const e of s.env) assert.ok(help.includes(e), e);
    }
  });
});

describe("share, access and hardening settings", () => {
  it("are off (or closed) by default; sharing turns access control on with a generated token", () => {
    const c = loadConfig([], {});
    assert.equal(c.share, false);
    assert.equal(c.token, null);
    assert.equal(c.auth, null);
    assert.deepEqual(c.corsOrigins, []);
    assert.equal(c.shareTtlMs, 72 * 3600_000);
    const shared = loadConfig(["--share"], {});
    assert.match(shared.token ?? "", /^[A-Za-z0-9_-]{24}$/);
    assert.notEqual(loadConfig(["--share"], {}).token, shared.token, "a new token each start");
    assert.equal(loadConfig(["--share", "--no-share-auth"], {}).token, null);
    assert.equal(loadConfig(["--share", "--auth=ann:pw"], {}).token, null, "--auth replaces the token");
    assert.equal(loadConfig(["--share"], { CAPTION_TOKEN: "my-own-token" }).token, "my-own-token");
    assert.equal(makeConfig({ share: true }).token?.length, 24);
  });

  it("reads secrets from a file or the environment, so that they stay out of `ps`; --help says so", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "studio-secrets-"));
    try {
      writeFileSync(path.join(dir, "token"), "file-token-0123456789\n");
      writeFileSync(path.join(dir, "auth"), "ann:s3cret pass\r\nignored second line\n");
      writeFileSync(path.join(dir, "empty"), "\n");
      const t = path.join(dir, "token"), a = path.join(dir, "auth");
      assert.equal(loadConfig([`--token-file=${t}`], {}).token, "file-token-0123456789");
      assert.equal(loadConfig(["--token-file", t], {}).token, "file-token-0123456789");
      assert.equal(loadConfig([], { CAPTION_TOKEN_FILE: t }).token, "file-token-0123456789");
      assert.equal(loadConfig([], { CAPTION_AUTH_FILE: a }).auth, "ann:s3cret pass");
      assert.equal(loadConfig([], { CAPTION_TOKEN: "env-token-0123456789", CAPTION_TOKEN_FILE: t }).token, "env-token-0123456789", "the variable beats the file");
      assert.equal(loadConfig([`--token-file=${t}`], { CAPTION_TOKEN: "env-token-0123456789" }).token, "file-token-0123456789", "a flag beats the environment");
      assert.throws(() => loadConfig([`--token-file=${path.join(dir, "missing")}`], {}), /--token-file: cannot read .*missing \(ENOENT\)/);
      assert.throws(() => loadConfig([`--token-file=${path.join(dir, "empty")}`], {}), /--token-file: .*empty is empty/);
      assert.throws(() => loadConfig(["--token=abcdefgh-123", `--token-file=${t}`], {}), /--token or --token-file, not both/);
      assert.throws(() => loadConfig([`--auth-file=${t}`], {}), /auth must be "user:password"/, "a file's value is checked like any other");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const help = helpText();
    for (const name of ["--token-file", "CAPTION_TOKEN_FILE", "--auth-file", "CAPTION_AUTH_FILE"]) assert.ok(help.includes(name), name);
    assert.match(help, /visible to other local users in `ps`/);
  });

  it("reads the reverse proxies to trust (none by default)", () => {
    assert.deepEqual(loadConfig([], {}).trustProxy, []);
    assert.deepEqual(loadConfig(["--trust-proxy=127.0.0.1, 10.0.0.2"], {}).trustProxy, ["127.0.0.1", "10.0.0.2"]);
    assert.deepEqual(loadConfig([], { CAPTION_TRUST_PROXY: "::1" }).trustProxy, ["::1"]);
    assert.throws(() => loadConfig(["--trust-proxy=proxy.example"], {}), /trustProxy: "proxy.example" is not an IP address/);
  });

  it("reads durations, providers, hosts, credentials and origins", () => {
    assert.equal(loadConfig(["--share-ttl=30m"], {}).shareTtlMs, 30 * 60_000);
    assert.equal(loadConfig(["--share-ttl", "2d"], {}).shareTtlMs, 48 * 3600_000);
    assert.equal(loadConfig([], { CAPTION_SHARE_TTL: "1.5" }).shareTtlMs, 90 * 60_000, "a bare number is hours");
    assert.equal(loadConfig(["--share-ttl=90s"], {}).shareTtlMs, 90_000);
    const c = loadConfig(["--share-provider=ngrok", "--share-host=connect.example.com:443", "--auth=ann:pa:ss", "--rate-limit=0"], { NGROK_AUTHTOKEN: "tok" });
    assert.deepEqual([c.shareProvider, c.shareHost, c.auth, c.rateLimit, c.ngrokAuthtoken], ["ngrok", "connect.example.com:443", "ann:pa:ss", 0, "tok"]);
    assert.equal(loadConfig(["--share-host=http://127.0.0.1:9000"], {}).shareHost, "http://127.0.0.1:9000");
    assert.deepEqual(loadConfig(["--cors-origins=https://a.example, http://b.example:8080"], {}).corsOrigins, ["https://a.example", "http://b.example:8080"]);
    assert.equal(loadConfig(["--share", "--host=0.0.0.0"], {}).host, "0.0.0.0");
  });

  const bad: [string[], Record<string, string>, RegExp][] = [
    [["--share-ttl=forever"], {}, /shareTtlMs must be a duration such as 72h/],
    [["--share-ttl=-1h"], {}, /must be a duration/],
    [["--share-ttl=0.5s"], {}, /shareTtlMs must be between 1 s and 24 days/],
    [["--share-ttl=30d"], {}, /must be between 1 s and 24 days/],
    [["--share-provider=bore"], {}, /shareProvider must be one of localtunnel, ngrok, got "bore"/],
    [["--share-host=localtunnel.me"], {}, /shareHost must be a URL such as https:\/\/localtunnel\.me/],
    [["--share-provider=ngrok", "--share-host=https://x.example"], {}, /shareHost must be host:port/],
    [["--auth=nopassword"], {}, /auth must be "user:password"/],
    [["--auth=:pw"], {}, /auth must be "user:password"/],
    [["--token=short"], {}, /token must be 8 to 256 letters/],
    [["--token=has space in it"], {}, /token must be 8 to 256/],
    [["--cors-origins=https://a.example/path"], {}, /corsOrigins: "https:\/\/a\.example\/path" is not an origin/],
    [["--cors-origins=*"], {}, /is not an origin/],
    [["--rate-limit=-1"], {}, /rateLimit must be between 0/],
    [["--share", "--host=192.168.1.5"], {}, /share: the tunnel reaches the studio on localhost/],
  ];
  for (const [argv, env, pattern] of bad) {
    it(`refuses ${JSON.stringify(argv)}`, () => {
      assert.throws(() => loadConfig(argv, env), (e: unknown) => e instanceof ConfigError && pattern.test(e.message));
    });
  }

  it("never shows a secret in --help", () => {
    const help = helpText();
    assert.match(help, /--share-ttl=…\s+CAPTION_SHARE_TTL\s+.*\[72h\]/);
    assert.match(help, /--token=…\s+CAPTION_TOKEN\s+.*\[none; generated when sharing\]/);
    assert.match(help, /NGROK_AUTHTOKEN/);
  });
});

describe("npm start (server/index.ts)", () => {
  const children: ReturnType<typeof spawn>[] = [];
  const blockers: net.Server[] = [];
  after(() => {
    children.forEach((c) => c.exitCode === null && c.kill("SIGKILL"));
    blockers.forEach((b) => b.close());
  });

  /** Runs the real entry point as npm start does (bundled, plain node). */
  function start(args: string[]) {
    const child = spawnNpmStart(args);
    children.push(child);
    let out = "";
    child.stdout!.on("data", (d) => (out += d));
    child.stderr!.on("data", (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const until = async (pattern: RegExp, ms = 120_000) => {
      const t0 = Date.now();
      while (!pattern.test(out)) {
        if (Date.now() - t0 > ms || child.exitCode !== null) throw new Error(`did not print ${pattern}; output:\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return out;
    };
    return { child, exited, until, output: () => out };
  }

  async function takenPort(): Promise<number> {
    const blocker = net.createServer();
    blockers.push(blocker);
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    return (blocker.address() as net.AddressInfo).port;
  }

  it("moves to the next free port when the port is taken, prints the URL, and stops on SIGTERM", { timeout: 180_000 }, async () => {
    const port = await takenPort();
    const run = start(["--port", String(port), "--host", "127.0.0.1"]);
    const out = await run.until(/Running on local URL: +http:\/\/127\.0\.0\.1:(\d+)/);
    const used = Number(/Running on local URL: +http:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1]);
    assert.ok(used > port, `${used} > ${port}`);
    assert.match(out, new RegExp(`Port ${port} is in use; using port ${used} instead`));
    const health = await fetch(`http://127.0.0.1:${used}/api/health`);
    assert.equal(health.status, 200);
    run.child.kill("SIGTERM");
    assert.equal(await run.exited, 0);
    assert.match(run.output(), /SIGTERM: finishing 0 job\(s\)[\s\S]*Stopped\./);
  });

  it("fails clearly with --strict-port when the port is taken", { timeout: 180_000 }, async () => {
    const port = await takenPort();
    const run = start(["--port", String(port), "--strict-port"]);
    assert.equal(await run.exited, 1);
    assert.match(run.output(), new RegExp(`port ${port} is already in use \\(--strict-port is set\\)`));
  });

  it("rejects a bad flag before loading anything", { timeout: 60_000 }, async () => {
    const run = start(["--concurrency=lots"]);
    assert.equal(await run.exited, 2);
    assert.match(run.output(), /--concurrency: concurrency must be an integer[\s\S]*Usage: npm start/);
  });

  it("the npm start script itself rebuilds the bundle and runs it with plain node", { timeout: 60_000 }, () => {
    const bundle = path.join(import.meta.dirname, "..", ".build", "server.mjs");
    rmSync(bundle, { force: true });
    const out = execFileSync("npm", ["start", "--silent", "--", "--help"], { cwd: path.join(import.meta.dirname, ".."), encoding: "utf8", env: { ...process.env, NODE_OPTIONS: "" } });
    assert.match(out, /Usage: npm start/);
    assert.ok(existsSync(bundle), "npm start built .build/server.mjs");
    assert.doesNotMatch(readFileSync(bundle, "utf8"), /from "\.\.?\//, "no import of the repository's own files is left outside the bundle");
  });
});
