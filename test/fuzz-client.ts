/**
 * One hostile upload sent to a running studio, by Socket.IO or HTTP, and what came of it. Shared
 * by the fuzz test (test/server-fuzz.test.ts) and the full fuzz run (bench/server-fuzz.ts).
 */
import type { Socket } from "socket.io-client";
import type { CaptionAck, ClientEvents, DoneEvent, FailedEvent, ServerEvents } from "../server/events.ts";

/** A caption, a refusal with one of the expected codes, or a failure (anything else). */
export type Outcome = { ok: true } | { ok: false; refused: string } | { ok: false; failure: string };

export function viaSocket(s: Socket<ServerEvents, ClientEvents>, image: Uint8Array, opts: Record<string, unknown>, refusals: ReadonlySet<string>): Promise<Outcome> {
  return new Promise((resolve) => {
    let id: string | null | undefined;
    const off = () => {
      s.off("done", onDone);
      s.off("failed", onFailed);
      s.off("disconnect", onGone);
    };
    const onDone = (e: DoneEvent) => {
      if (e.id !== id) return;
      off();
      resolve(typeof e.caption === "string" ? { ok: true } : { ok: false, failure: "done without a caption" });
    };
    const onFailed = (e: FailedEvent) => {
      if (e.id !== id) return;
      off();
      resolve(refusals.has(e.code) ? { ok: false, refused: e.code } : { ok: false, failure: `failed ${e.code}: ${e.message}` });
    };
    const onGone = (reason: string) => {
      off();
      resolve({ ok: false, failure: `socket disconnected: ${reason}` });
    };
    s.on("done", onDone);
    s.on("failed", onFailed);
    s.on("disconnect", onGone);
    s.emit("caption", { image, ...opts }, (ack: CaptionAck) => {
      id = ack.ok ? ack.id : null;
      if (!ack.ok) {
        off();
        resolve(refusals.has(ack.code) ? { ok: false, refused: ack.code } : { ok: false, failure: `refused ${ack.code}: ${ack.message}` });
      }
    });
  });
}

/** POST /api/caption with the image as a raw body or a multipart upload; a refusal must be a 4xx with a JSON code and message. */
export async function viaHttp(url: string, image: Uint8Array, query: string, multipart: boolean, refusals: ReadonlySet<string>, headers: Record<string, string> = {}): Promise<Outcome> {
  let res: Response;
  try {
    if (multipart) {
      const form = new FormData();
      form.append("image", new Blob([new Uint8Array(image)]), "upload.jpg");
      res = await fetch(`${url}/api/caption?${query}`, { method: "POST", body: form, headers });
    } else {
      res = await fetch(`${url}/api/caption?${query}`, { method: "POST", body: new Uint8Array(image), headers: { ...headers, "content-type": "image/jpeg" } });
    }
  } catch (e) {
    return { ok: false, failure: `network: ${(e as Error).cause ?? e}` };
  }
  const text = await res.text();
  let body: { caption?: unknown; error?: string; message?: string };
  try {
    body = JSON.parse(text);
  } catch {
    return { ok: false, failure: `HTTP ${res.status}, not JSON: ${text.slice(0, 80)}` };
  }
  if (res.status === 200) return typeof body.caption === "string" ? { ok: true } : { ok: false, failure: "200 without a caption" };
  if (res.status >= 400 && res.status < 500 && refusals.has(body.error ?? "") && typeof body.message === "string") return { ok: false, refused: body.error! };
  return { ok: false, failure: `HTTP ${res.status} ${body.error}: ${body.message}` };
}

/** Forged forwarding headers for the n-th request (none for most): a local client must gain nothing by them. */
export function forgedHeaders(n: number): Record<string, string> {
  switch (n % 10) {
    case 1: return { "x-forwarded-for": `203.0.113.${n % 256}` };
    case 5: return { "x-forwarded-for": Array.from({ length: 50 }, (_, i) => `198.51.100.${(n + i) % 256}`).join(", "), "x-forwarded-proto": "https", "x-forwarded-host": "evil.example" };
    case 9: return { "x-forwarded-for": "not an address, ::1, , 127.0.0.1, [::ffff:1.2.3.4]:80" };
    default: return {};
  }
}
