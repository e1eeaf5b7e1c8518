/**
 * Access control: who may use the studio. Off unless an access token or `user:pass` is set
 * (sharing generates a token, since a public link is an open door). One check guards every
 * HTTP route and the Socket.IO handshake, and accepts, in order:
 *   - the session cookie, set on any request that carried good credentials, so the page, its
 *     static files, the API and the Socket.IO handshake all work once a browser has opened the
 *     printed link (HttpOnly, SameSite=Lax: a cross-site link still works, cross-site posts do not);
 *   - the token: `?token=` in the URL (a browser is then redirected to the same URL without it, so
 *     it stays out of the address bar and history; a Socket.IO client passes `query: { token }`),
 *     or `Authorization: Bearer <token>`;
 *   - HTTP Basic `user:pass` (browsers prompt for it), or Gradio's `POST /login` form
 *     (`username`, `password`; what @gradio/client's `auth` option sends).
 * Anything else gets 401. Socket.IO is judged at the Engine.IO handshake, before a session exists
 * (app.ts): an unauthenticated client never gets one, so it can send nothing (a session would take
 * messages of --upload-limit for 45 s before Socket.IO's own CONNECT could be checked). Secrets
 * are compared in constant time, and an address that keeps presenting wrong ones is locked out
 * for a while (429), so a password cannot be guessed at speed.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders, IncomingMessage } from "node:http";
import express, { type Request, type Response } from "express";
import multer from "multer";
import type { ServerConfig } from "./config.ts";
import { ErrorCode } from "./events.ts";
import { clientKey } from "./rate-limit.ts";

/** Wrong credentials allowed per address per window before it is locked out. */
const MAX_FAILURES = 20;
const FAILURE_WINDOW_MS = 10 * 60_000;
/** Addresses tracked at most (memory stays bounded whatever the number of guessers). */
const MAX_TRACKED = 10_000;

/** A refusal as HTTP status, error code and message. */
export interface Refusal {
  status: 401 | 403 | 429;
  code: ErrorCode;
  message: string;
  retryAfterS?: number;
}

export interface Access {
  readonly enabled: boolean;
  /** The query a printed link carries: "?token=..." in token mode, else "". */
  readonly linkQuery: string;
  /** Express: `POST /login`, then the check. Mount it before every other router. */
  readonly http: express.Router;
  /** Judges an Engine.IO handshake request (cookie, Authorization, `?token=`): null to let it in, else why not. */
  handshake(req: IncomingMessage): Refusal | null;
}

const sha256 = (s: string) => createHash("sha256").update(s).digest();
/** Constant-time string equality (both sides hashed first, so lengths leak nothing either). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b));
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Wrong-credential counts per address (IPv6: per /56, as for rate limits), in fixed windows. */
class Lockout {
  private readonly counts = new Map<string, { n: number; until: number }>();
  blocked(addr: string): number {
    const c = this.counts.get(addr);
    if (!c || c.until <= Date.now()) return 0;
    return c.n >= MAX_FAILURES ? Math.ceil((c.until - Date.now()) / 1000) : 0;
  }
  fail(addr: string): void {
    const now = Date.now();
    if (this.counts.size >= MAX_TRACKED) {
      for (const [k, c] of this.counts) if (c.until <= now) this.counts.delete(k);
      // Still full: forget the oldest (a Map keeps insertion order).
      for (const k of this.counts.keys()) {
        if (this.counts.size < MAX_TRACKED) break;
        this.counts.delete(k);
      }
    }
    const c = this.counts.get(addr);
    if (!c || c.until <= now) this.counts.set(addr, { n: 1, until: now + FAILURE_WINDOW_MS });
    else c.n++;
  }
}

type Verdict = "ok" | "missing" | "wrong";

export function createAccess(config: Pick<ServerConfig, "token" | "auth" | "trustProxy">): Access {
  const { token, auth, trustProxy } = config;
  const enabled = token !== null || auth !== null;
  // The cookie proves an earlier good credential without holding it: an HMAC keyed by the
  // credentials, so it survives a restart with the same ones and dies with a new token.
  const session = createHmac("sha256", `${token ?? ""}\n${auth ?? ""}`).update("caption-studio session v1").digest("base64url");
  // Named per credential (two studios on one host keep their own cookies), by a second HMAC, so
  // the name gives away nothing of the value.
  const cookieName = `caption_studio_${createHmac("sha256", session).update("cookie name").digest("hex").slice(0, 8)}`;
  const lockout = new Lockout();

  const howTo = [
    token !== null ? "open the link printed in the studio's console (it carries ?token=), or send Authorization: Bearer <token>" : "",
    auth !== null ? "sign in with the user name and password you were given" : "",
  ].filter(Boolean).join("; or ");
  const needMessage = `this studio needs credentials: ${howTo}`;

  /** Judges one set of presented credentials (any one good credential is enough). */
  function judge(headers: IncomingHttpHeaders, tokens: unknown[]): Verdict {
    // A stale cookie (the server has a new token since) is not a wrong guess: it counts as missing.
    const cookie = cookieValue(headers.cookie, cookieName);
    if (cookie !== undefined && safeEqual(cookie, session)) return "ok";
    let presented = false;
    const authz = headers.authorization ?? "";
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authz);
    if (bearer) tokens = [...tokens, bearer[1]];
    for (const t of tokens) {
      if (typeof t !== "string" || t === "") continue;
      presented = true;
      if (token !== null && safeEqual(t, token)) return "ok";
    }
    const basic = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authz);
    if (basic) {
      presented = true;
      if (auth !== null && safeEqual(Buffer.from(basic[1], "base64").toString("utf8"), auth)) return "ok";
    }
    return presented ? "wrong" : "missing";
  }

  function setCookie(req: Request, res: Response): void {
    res.cookie(cookieName, session, { httpOnly: true, sameSite: "lax", secure: req.secure, path: "/" });
  }

  function refuse(req: Request, res: Response, status: 401 | 429, message: string, retryAfterS = 0): void {
    if (status === 401 && auth !== null) res.set("WWW-Authenticate", 'Basic realm="Caption Studio", charset="UTF-8"');
    if (retryAfterS > 0) res.set("Retry-After", String(retryAfterS));
    res.set("Cache-Control", "no-store");
    const code = status === 401 ? ErrorCode.Unauthorized : ErrorCode.RateLimited;
    if (isNavigation(req)) res.status(status).type("text").send(`${status === 401 ? "401 Unauthorized" : "429 Too Many Requests"}: ${message}\n`);
    else res.status(status).json({ error: code, message });
  }

  const router = express.Router();
  const form = multer({ storage: multer.memoryStorage(), limits: { files: 0, fields: 4, fieldSize: 1024, parts: 4 } }).none();
  const urlencoded = express.urlencoded({ extended: false, limit: 4096, parameterLimit: 4 });
  const json = express.json({ limit: 4096, strict: true });
  const LOGIN_TYPES = "a form (application/x-www-form-urlencoded or multipart/form-data) or JSON, with the fields username and password";

  // Gradio's login form (what @gradio/client's `auth: [user, pass]` posts): a cookie on success.
  router.post("/login", (req, res) => {
    const addr = clientKey(req.socket, req.headers["x-forwarded-for"], trustProxy);
    const wait = lockout.blocked(addr);
    if (wait) return refuse(req, res, 429, `too many wrong credentials from your address; try again in ${wait} s`, wait);
    // Gradio's clients post a form; scripts often post JSON. Any other body is refused as such, never
    // counted as a wrong guess (right credentials in an unexpected type must not lock anyone out).
    const parse = req.is("multipart/form-data") ? form : req.is("application/x-www-form-urlencoded") ? urlencoded : req.is("application/json") ? json : null;
    if (!parse) return void res.status(400).json({ error: ErrorCode.BadRequest, message: `bad login request: send ${LOGIN_TYPES}` });
    parse(req, res, (err?: unknown) => {
      if (err) return void res.status(400).json({ error: ErrorCode.BadRequest, message: `bad login request: send ${LOGIN_TYPES}` });
      if (!enabled) return void res.json({ success: true });
      const body = (typeof req.body === "object" && req.body !== null ? req.body : {}) as Record<string, unknown>;
      const { username, password } = body;
      if (typeof password !== "string") return void res.status(400).json({ error: ErrorCode.BadRequest, message: `bad login request: no password field; send ${LOGIN_TYPES}` });
      const u = typeof username === "string" ? username : "";
      const good = (auth !== null && safeEqual(`${u}:${password}`, auth)) || (token !== null && safeEqual(password, token));
      if (!good) {
        lockout.fail(addr);
        return refuse(req, res, 401, "incorrect credentials");
      }
      setCookie(req, res);
      res.json({ success: true });
    });
  });

  router.use((req, res, next) => {
    if (!enabled) return next();
    const addr = clientKey(req.socket, req.headers["x-forwarded-for"], trustProxy);
    const wait = lockout.blocked(addr);
    if (wait) return refuse(req, res, 429, `too many wrong credentials from your address; try again in ${wait} s`, wait);
    const queryToken = typeof req.query.token === "string" ? req.query.token : undefined;
    const verdict = judge(req.headers, [queryToken]);
    if (verdict !== "ok") {
      if (verdict === "wrong") lockout.fail(addr);
      return refuse(req, res, 401, verdict === "wrong" ? `wrong credentials: ${howTo}` : needMessage);
    }
    if (cookieValue(req.headers.cookie, cookieName) !== session) setCookie(req, res);
    // A browser that opened the link: drop the token from the address bar (and from history and Referer).
    if (queryToken !== undefined && (req.method === "GET" || req.method === "HEAD") && isNavigation(req)) {
      const url = new URL(req.originalUrl, "http://studio.invalid");
      url.searchParams.delete("token");
      res.redirect(303, url.pathname.replace(/^\/+/, "/") + url.search);
      return;
    }
    next();
  });

  return {
    enabled,
    linkQuery: token !== null ? `?token=${encodeURIComponent(token)}` : "",
    http: router,
    handshake(req) {
      if (!enabled) return null;
      const addr = clientKey(req.socket, req.headers["x-forwarded-for"], trustProxy);
      const wait = lockout.blocked(addr);
      if (wait) return { status: 429, code: ErrorCode.RateLimited, message: `too many wrong credentials from your address; try again in ${wait} s`, retryAfterS: wait };
      const verdict = judge(req.headers, [new URL(req.url ?? "/", "http://studio.invalid").searchParams.get("token") ?? undefined]);
      if (verdict === "ok") return null;
      if (verdict === "wrong") lockout.fail(addr);
      return { status: 401, code: ErrorCode.Unauthorized, message: verdict === "wrong" ? `wrong credentials: ${howTo}` : needMessage };
    },
  };
}

/** A browser opening a page (not a script fetching data). */
function isNavigation(req: Request): boolean {
  return req.get("sec-fetch-mode") === "navigate" || /\btext\/html\b/.test(req.get("accept") ?? "");
}
