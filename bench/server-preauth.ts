/**
 * Unauthenticated floods against a studio with an access token (issue 13, finding 3): many
 * parallel uploads of --mb MB each, sent without credentials to every door a client could try
 * (a Socket.IO polling handshake, a message to a made-up session, the HTTP API, Gradio's upload).
 * Prints how each was answered and how fast, the server's peak RSS during the flood against its
 * RSS before, and an authenticated caption's latency during the flood against before it.
 *   npx tsx bench/server-preauth.ts [--parallel=60] [--mb=10.9] [--rounds=3]
 */
import { readFileSync } from "node:fs";
import http from "node:http";
import { captionOnce, connect, fmt, parseConfig, photos, runStep, startServer, summarise } from "./server-harness.ts";

const defaults = { parallel: 60, mb: 10.9, rounds: 3 };
const TOKEN = "bench-preauth-token-0123456789";

/** The child's resident set, MiB, from /proc (Linux). */
const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? NaN) / 1024;

/** One POST of `body` without credentials; resolves with the status (0: connection dropped) and ms. */
function post(origin: string, target: string, body: Buffer, type: string): Promise<{ status: number; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = http.request(new URL(target, origin), { method: "POST", headers: { "content-type": type, "content-length": body.length } }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0 }));
    });
    req.on("error", () => resolve({ status: 0, ms: performance.now() - t0 }));
    req.end(body);
  });
}

runStep(async () => {
  const cfg = parseConfig(defaults);
  const server = await startServer([`--token=${TOKEN}`, "--rate-limit=0"]);
  const origin = new URL(server.url).origin;
  const pid = server.child.pid!;
  try {
    const img = photos(1)[0];
    const socket = await connect(`${origin}/?token=${TOKEN}`);
    const before: number[] = [];
    for (let i = 0; i < 10; i++) before.push((await captionOnce(socket, img, { beam: 1 })).totalMs);
    const rssBefore = rssMb(pid);
    const body = Buffer.alloc(Math.round(cfg.mb * 1024 * 1024), 0x61);
    const doors = [
      ["Socket.IO polling handshake", "/socket.io/?EIO=4&transport=polling", "text/plain;charset=UTF-8"],
      ["Socket.IO made-up session", "/socket.io/?EIO=4&transport=polling&sid=made-up-session-id", "text/plain;charset=UTF-8"],
      ["HTTP API", "/api/caption", "image/jpeg"],
      ["Gradio upload", "/gradio_api/upload", "multipart/form-data; boundary=x"],
    ] as const;
    let peak = rssBefore;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 20);
    const during: number[] = [];
    const answers = new Map<string, { status: number; ms: number }[]>();
    for (let r = 0; r < cfg.rounds; r++) {
      const flood = doors.flatMap(([name, target, type]) =>
        Array.from({ length: Math.ceil(cfg.parallel / doors.length) }, () => post(origin, target, body, type).then((a) => answers.set(name, [...(answers.get(name) ?? []), a]))),
      );
      const timing = (async () => { for (let i = 0; i < 5; i++) during.push((await captionOnce(socket, img, { beam: 1 })).totalMs); })();
      await Promise.all([...flood, timing]);
    }
    clearInterval(sampler);
    socket.close();
    console.log(`pre-auth flood: ${cfg.rounds} rounds of ${cfg.parallel} parallel ${cfg.mb} MB posts without credentials (token server)`);
    for (const [name, list] of answers) {
      const statuses = [...new Set(list.map((a) => a.status))].join("/");
      console.log(`  ${name.padEnd(28)} answered ${statuses}; ${fmt(summarise(list.map((a) => a.ms)))}`);
    }
    console.log(`  server RSS: ${rssBefore.toFixed(0)} MiB before, peak ${peak.toFixed(0)} MiB during (+${(peak - rssBefore).toFixed(0)} MiB)`);
    console.log(`  authenticated greedy caption: before ${fmt(summarise(before))}; during the flood ${fmt(summarise(during))}`);
  } finally {
    await server.stop();
  }
});
