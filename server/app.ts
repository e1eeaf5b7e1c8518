/**
 * Wires the studio: Express (pages, static files, HTTP API) and Socket.IO share one HTTP
 * server, and both caption through the same queue of jobs. It never listens; server/index.ts
 * does, and tests listen on port 0.
 */
import { createServer, ServerResponse, STATUS_CODES, type IncomingMessage, type Server as HttpServer } from "node:http";
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from "node:net";
import path from "node:path";
import express, { type ErrorRequestHandler } from "express";
import { Server } from "socket.io";
import type { Captioner } from "../model/index.ts";
// Directly, not through model/index.ts: a path constant needs none of the model's runtimes.
import { PACKAGE_ROOT } from "../model/package-root.ts";
import { createAccess, type Access, type Refusal } from "./access.ts";
import { createCaptionJobs, type CaptionJobs } from "./caption-jobs.ts";
import type { ServerConfig } from "./config.ts";
import { ErrorCode, type ClientEvents, type ServerEvents } from "./events.ts";
import { gradioRouter } from "./gradio/index.ts";
import { fromThisProcess } from "./own-connection.ts";
import { clientKey, createRateLimits, rateLimitedMessage, tunnelConnections } from "./rate-limit.ts";
import { ResultStore } from "./result-store.ts";
import { apiRouter } from "./routes/api.ts";
import { pagesRouter } from "./routes/pages.ts";
import { crossSitePolicy, crossSiteRefusal, hostAllowed, hostPolicy, hostRefusal, originAllowed, securityHeaders } from "./security.ts";
import { registerCaptionSocket } from "./sockets/caption.ts";

const root = PACKAGE_ROOT;

export interface StudioApp {
  app: express.Express;
  httpServer: HttpServer;
  io: Server<ClientEvents, ServerEvents>;
  jobs: CaptionJobs;
  /** Who may use the studio (off unless a token or user:pass is set). */
  access: Access;
  /**
   * A private loopback listener for the share tunnel's client: its connections are served like any
   * other, and marked as the tunnel's, so the X-Forwarded-For that the provider's edge writes is
   * believed on them (and on no other connection, unless --trust-proxy names its peer).
   */
  tunnelEntry(): Promise<{ host: string; port: number }>;
  /** Refuses new work, lets accepted jobs finish (up to config.shutdownGraceMs), then closes sockets and the server. */
  close(): Promise<void>;
}

export function createApp({ captioner, config }: { captioner: Captioner; config: ServerConfig }): StudioApp {
  const app = express();
  const httpServer = createServer(app);
  const io = new Server<ClientEvents, ServerEvents>(httpServer, {
    serveClient: true, // the page loads /socket.io/socket.io.esm.min.js; no CDN
    maxHttpBufferSize: config.uploadLimit + 1024 * 1024, // the message size limit: the image plus the envelope
    ...(config.corsOrigins.length > 0 ? { cors: { origin: [...config.corsOrigins] } } : {}),
  });
  const jobs = createCaptionJobs({ captioner, config });
  // One store of recent results for every route that draws a result picture (socket, /api, Gradio).
  const results = new ResultStore({ pixelLimit: config.pixelLimit });
  // Open connections, and those that have carried a request (for close()).
  const connections = new Set<Socket>();
  const used = new WeakSet<Socket>();
  httpServer.on("connection", (socket: Socket) => {
    connections.add(socket);
    socket.once("close", () => connections.delete(socket));
  });
  httpServer.on("request", (req: IncomingMessage) => used.add(req.socket));
  httpServer.on("upgrade", (req: IncomingMessage) => used.add(req.socket));
  const access = createAccess(config);
  const limits = createRateLimits(config);

  app.disable("x-powered-by");
  app.set("env", "production"); // should an error ever reach Express's own handler: no stack trace in the page
  app.set("trust proxy", "loopback"); // behind a share tunnel: the public scheme and host (X-Forwarded-*)
  app.set("view engine", "ejs");
  app.set("views", path.join(root, "views"));
  // Before every router (pages, API, Gradio routes): headers, the Host check, rate limit, CORS, credentials.
  app.use(securityHeaders());
  app.use(hostPolicy(config));
  if (limits.http) app.use(limits.http);
  app.use(crossSitePolicy(config));
  app.use(access.http);
  app.use("/static", express.static(path.join(root, "static"), { index: false }));
  app.use(pagesRouter({ captioner, config })); // first: it owns the page at GET /api
  app.use("/api", apiRouter({ captioner, config, jobs, results, startedAt: Date.now() }));
  app.use(gradioRouter({ config, jobs, results })); // Gradio clients: /config and /gradio_api/*
  app.use((req, res) => {
    res.status(404).type("text").send(`Not found: ${req.path}`);
  });
  const onError: ErrorRequestHandler = (err, _req, res, _next) => {
    const status = typeof err?.status === "number" && err.status >= 400 && err.status < 600 ? err.status : 500;
    if (status >= 500) console.error("[caption-studio]", err);
    if (!res.headersSent) res.status(status).type("text").send(status === 404 ? "Not found" : status < 500 ? "Bad request" : "Internal error");
  };
  app.use(onError);

  io.engine.on("headers", (headers: Record<string, string>) => {
    headers["X-Content-Type-Options"] = "nosniff";
    headers["Cache-Control"] = "no-store";
  });
  const keyOf = (req: IncomingMessage) => clientKey(req.socket, req.headers["x-forwarded-for"], config.trustProxy);
  // Every new Engine.IO session is judged before it exists, in the order HTTP requests are: the Host
  // (DNS rebinding) and the origin (WebSockets ignore CORS, so cross-site handshakes are refused
  // here), then the rate limit, then credentials when access control is on. Later requests carry
  // the session's id, which only a judged handshake got (an unknown id is refused by Engine.IO
  // itself; an empty one would start a new session, so it is judged like none).
  io.engine.use((req: IncomingMessage, res: ServerResponse, next: (err?: Error) => void) => {
    if (new URL(req.url ?? "/", "http://studio.invalid").searchParams.get("sid")) return next();
    if (!hostAllowed(req.headers, req.socket, config)) return refuseHandshake(res, { status: 403, code: ErrorCode.Forbidden, message: hostRefusal });
    if (!originAllowed(req.headers, config.corsOrigins)) return refuseHandshake(res, { status: 403, code: ErrorCode.Forbidden, message: crossSiteRefusal });
    limits.hit(keyOf(req)).then(({ ok, retryAfterS }) => {
      const refusal: Refusal | null = ok ? access.handshake(req) : { status: 429, code: ErrorCode.RateLimited, message: rateLimitedMessage(retryAfterS), retryAfterS };
      if (!refusal) return next();
      refuseHandshake(res, refusal);
    }).catch(next);
  });
  io.on("connection", (socket) => {
    // Every message counts against the client address's rate limit; over it, the message is refused.
    socket.use(([, ...args], next) => {
      void limits.hit(keyOf(socket.request)).then(({ ok, retryAfterS }) => {
        if (ok) return next();
        const message = rateLimitedMessage(retryAfterS);
        const ack = args.at(-1);
        if (typeof ack === "function") ack({ ok: false, code: ErrorCode.RateLimited, message });
        socket.emit("failed", { id: null, code: ErrorCode.RateLimited, message });
      });
    });
    registerCaptionSocket(socket, { jobs, results, config, pictureUrl: (id) => `/api/results/${id}/picture.png` });
  });

  const entries = new Set<NetServer>();
  let closing: Promise<void> | undefined;
  return {
    app,
    httpServer,
    io,
    jobs,
    access,
    async tunnelEntry() {
      // Only the tunnel client's own connections are marked: another local process that finds the
      // port is served as the plain loopback client it is (where the system cannot tell, as on
      // macOS, the entry's connections are trusted).
      const entry = createNetServer((socket) => {
        socket.on("error", () => socket.destroy()); // a reset before the check is done must not throw
        void fromThisProcess(socket).then((own) => {
          if (own !== false) tunnelConnections.add(socket);
          httpServer.emit("connection", socket);
        });
      });
      await new Promise<void>((resolve, reject) => {
        entry.once("error", reject);
        entry.listen(0, "127.0.0.1", () => resolve());
      });
      entries.add(entry);
      return { host: "127.0.0.1", port: (entry.address() as AddressInfo).port };
    },
    close() {
      closing ??= (async () => {
        for (const entry of entries) entry.close();
        const stopped = new Promise<void>((resolve) => (httpServer.listening ? httpServer.close(() => resolve()) : resolve()));
        httpServer.closeIdleConnections();
        await jobs.close(config.shutdownGraceMs);
        // Give `done`/`failed` already emitted a moment to reach their sockets.
        await new Promise((r) => setTimeout(r, 50));
        io.close(); // disconnects every socket; the HTTP server's own close is awaited below
        // Connections that never sent a request (a share tunnel opens some in advance) go now;
        // answers still being written (a result picture) get a moment, idle ones are closed.
        for (const socket of connections) if (!used.has(socket)) socket.destroy();
        let closed = false;
        void stopped.then(() => (closed = true));
        for (const deadline = Date.now() + 2000; !closed && Date.now() < deadline; ) {
          httpServer.closeIdleConnections();
          await new Promise((r) => setTimeout(r, 25));
        }
        httpServer.closeAllConnections();
        await stopped;
        limits.close();
      })();
      return closing;
    },
  };
}

/**
 * Answers a refused Engine.IO handshake with its status and `{ error, message }`. A polling request
 * has a real response; a WebSocket upgrade has only its socket, so the answer is written on it.
 */
function refuseHandshake(res: ServerResponse, r: Refusal): void {
  const body = JSON.stringify({ error: r.code, message: r.message });
  const headers: Record<string, string> = { "Content-Type": "application/json", "Cache-Control": "no-store", ...(r.retryAfterS ? { "Retry-After": String(r.retryAfterS) } : {}) };
  if (res instanceof ServerResponse) {
    res.writeHead(r.status, headers).end(body);
    return;
  }
  const socket = (res as unknown as { socket: Socket }).socket;
  const head = Object.entries({ ...headers, "Content-Length": String(Buffer.byteLength(body)), Connection: "close" }).map(([k, v]) => `${k}: ${v}`).join("\r\n");
  if (socket.writable) socket.end(`HTTP/1.1 ${r.status} ${STATUS_CODES[r.status]}\r\n${head}\r\n\r\n${body}`);
  else socket.destroy();
}
