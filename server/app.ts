/**
 * Wires the studio: Express (pages, static files, HTTP API) and Socket.IO share one HTTP
 * server, and both caption through the same queue of jobs. It never listens; server/index.ts
 * does, and tests listen on port 0.
 */
import { createServer, type Server as HttpServer } from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import express, { type ErrorRequestHandler } from "express";
import { Server } from "socket.io";
import type { Captioner } from "../model/types.ts";
import { createCaptionJobs, type CaptionJobs } from "./caption-jobs.ts";
import type { ServerConfig } from "./config.ts";
import type { ClientEvents, ServerEvents } from "./events.ts";
import { ResultStore } from "./result-store.ts";
import { apiRouter } from "./routes/api.ts";
import { pagesRouter } from "./routes/pages.ts";
import { registerCaptionSocket } from "./sockets/caption.ts";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export interface StudioApp {
  app: express.Express;
  httpServer: HttpServer;
  io: Server<ClientEvents, ServerEvents>;
  jobs: CaptionJobs;
  /** Refuses new work, lets accepted jobs finish (up to config.shutdownGraceMs), then closes sockets and the server. */
  close(): Promise<void>;
}

/** Same-origin only; the page uses no inline script or style. */
const CSP = [
  "default-src 'self'",
  "img-src 'self' blob: data:",
  "style-src 'self'",
  "script-src 'self'",
  "connect-src 'self' ws: wss:",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'self'",
].join("; ");

export function createApp({ captioner, config }: { captioner: Captioner; config: ServerConfig }): StudioApp {
  const app = express();
  const httpServer = createServer(app);
  const io = new Server<ClientEvents, ServerEvents>(httpServer, {
    serveClient: true, // the page loads /socket.io/socket.io.esm.min.js; no CDN
    maxHttpBufferSize: config.uploadLimit + 1024 * 1024, // room for the image plus the envelope
  });
  const jobs = createCaptionJobs({ captioner, config });
  const results = new ResultStore({ pixelLimit: config.pixelLimit });

  app.disable("x-powered-by");
  app.set("view engine", "ejs");
  app.set("views", path.join(root, "views"));
  app.use((_req, res, next) => {
    res.set({ "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin" });
    next();
  });
  app.use("/static", express.static(path.join(root, "static"), { index: false }));
  app.use(pagesRouter({ captioner, config })); // first: it owns the page at GET /api
  app.use("/api", apiRouter({ captioner, config, jobs, results, startedAt: Date.now() }));
  app.use((req, res) => {
    res.status(404).type("text").send(`Not found: ${req.path}`);
  });
  const onError: ErrorRequestHandler = (err, _req, res, _next) => {
    const status = typeof err?.status === "number" && err.status >= 400 && err.status < 600 ? err.status : 500;
    if (status >= 500) console.error("[caption-studio]", err);
    if (!res.headersSent) res.status(status).type("text").send(status === 404 ? "Not found" : status < 500 ? "Bad request" : "Internal error");
  };
  app.use(onError);

  io.on("connection", (socket) => {
    registerCaptionSocket(socket, { jobs, results, config, pictureUrl: (id) => `/api/results/${id}/picture.png` });
  });

  let closing: Promise<void> | undefined;
  return {
    app,
    httpServer,
    io,
    jobs,
    close() {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => (httpServer.listening ? httpServer.close(() => resolve()) : resolve()));
        httpServer.closeIdleConnections();
        await jobs.close(config.shutdownGraceMs);
        // Give `done`/`failed` already emitted a moment to reach their sockets.
        await new Promise((r) => setTimeout(r, 50));
        await new Promise<void>((resolve) => io.close(() => resolve()));
        httpServer.closeAllConnections();
        await stopped;
      })();
      return closing;
    },
  };
}
