/**
 * Wires the studio: Express (pages, static files, HTTP API) and Socket.IO share one HTTP
 * server, and both caption through the same queue of jobs. It never listens; server/index.ts
 * does, and tests listen on port 0.
 */
import { createServer, type IncomingMessage, type Server as HttpServer } from "node:http";
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import express, { type ErrorRequestHandler } from "express";
import { Server } from "socket.io";
import type { Captioner } from "../model/types.ts";
import { createAccess, handshakeError, type Access } from "./access.ts";
import { createCaptionJobs, type CaptionJobs } from "./caption-jobs.ts";
import type { ServerConfig } from "./config.ts";
import { ErrorCode, type ClientEvents, type ServerEvents } from "./events.ts";
import { gradioRouter } from "./gradio/index.ts";
import { clientKey, createRateLimits, rateLimitedMessage, tunnelConnections } from "./rate-limit.ts";
import { ResultStore } from "./result-store.ts";
import { apiRouter } from "./routes/api.ts";
import { pagesRouter } from "./routes/pages.ts";
import { crossSitePolicy, originAllowed, securityHeaders } from "./security.ts";
import { registerCaptionSocket } from "./sockets/caption.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

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
    // CORS is closed by default, and WebSockets ignore CORS: refuse cross-site handshakes here.
    allowRequest: (req, callback) => callback(null, originAllowed(req.headers, config.corsOrigins)),
    ...(config.corsOrigins.length > 0 ? { cors: { origin: [...config.corsOrigins] } } : {}),
  });
  const jobs = createCaptionJobs({ captioner, config });
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
  // Before every router (pages, API, Gradio routes): headers, rate limit, CORS, credentials.
  app.use(securityHeaders());
  if (limits.http) app.use(limits.http);
  app.use(crossSitePolicy(config));
  app.use(access.http);
  app.use("/static", express.static(path.join(root, "static"), { index: false }));
  app.use(pagesRouter({ captioner, config })); // first: it owns the page at GET /api
  app.use("/api", apiRouter({ captioner, config, jobs, results, startedAt: Date.now() }));
  app.use(gradioRouter({ config, jobs })); // Gradio clients: /config and /gradio_api/*
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
  const keyOf = (socket: { request: { headers: Record<string, string | string[] | undefined>; socket: { remoteAddress?: string } } }) =>
    clientKey(socket.request.socket, socket.request.headers["x-forwarded-for"], config.trustProxy);
  io.use((socket, next) => {
    void limits.hit(keyOf(socket)).then(({ ok, retryAfterS }) => next(ok ? undefined : handshakeError(ErrorCode.RateLimited, 429, rateLimitedMessage(retryAfterS))));
  });
  io.use((socket, next) => access.socket(socket, next));
  io.on("connection", (socket) => {
    // Captions count against the client address's rate limit; over it, the caption is refused.
    socket.use(([event, ...args], next) => {
      if (event !== "caption") return next();
      void limits.hit(keyOf(socket)).then(({ ok, retryAfterS }) => {
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
      const entry = createNetServer((socket) => {
        tunnelConnections.add(socket);
        httpServer.emit("connection", socket);
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
