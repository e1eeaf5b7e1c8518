/**
 * Security headers and the cross-site policy, in front of every route.
 *
 * Headers come from helmet: a content security policy that allows only this origin (the page has
 * no inline script or style, and no CDN), nosniff, frame, referrer, opener and resource policies.
 *
 * CORS is closed unless --cors-origins lists origins. Closed means: no Access-Control-* headers,
 * so other sites' scripts cannot read answers; a cross-site POST (or any other method that
 * browsers send without asking first) is refused with 403 `forbidden` before it does any work;
 * and Socket.IO refuses cross-site handshakes, since WebSockets are outside CORS altogether.
 * "Cross-site" means an Origin header naming another host than the request's Host; requests
 * without an Origin (curl, scripts, @gradio/client in Node) are not affected.
 *
 * DNS rebinding: a page on evil.example whose name is made to resolve to 127.0.0.1 talks to a
 * loopback studio as its own origin (Origin and Host both say evil.example). So a studio that
 * listens on loopback answers only requests addressed to a loopback name (localhost, *.localhost,
 * 127.x.x.x, [::1]); the share tunnel's connections (addressed to the public name) and those of
 * proxies named by --trust-proxy are exempt. A studio listening on all interfaces is reached by
 * whatever names its network gives it, and is not checked.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { RequestHandler } from "express";
import helmet from "helmet";
import type { ServerConfig } from "./config.ts";
import { ErrorCode } from "./events.ts";
import { trustedPeer, type Peer } from "./rate-limit.ts";

/** Same-origin only; the page uses no inline script or style. */
export function securityHeaders(): RequestHandler {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        imgSrc: ["'self'", "blob:", "data:"],
        styleSrc: ["'self'"],
        scriptSrc: ["'self'"],
        scriptSrcAttr: ["'none'"],
        connectSrc: ["'self'", "ws:", "wss:"],
        fontSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'self'"],
        frameAncestors: ["'self'"],
      },
    },
    referrerPolicy: { policy: "no-referrer" },
  });
}

/** True when a request may proceed: no Origin, the request's own host, or a listed origin. */
export function originAllowed(headers: IncomingHttpHeaders, corsOrigins: readonly string[]): boolean {
  const origin = headers.origin;
  if (origin === undefined) return true;
  if (corsOrigins.includes(origin)) return true;
  try {
    return new URL(origin).host === headers.host;
  } catch {
    return false; // "null" (sandboxed frames, file://) and garbage
  }
}

const LOOPBACK_LISTEN = /^(localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1)$/i;
const LOOPBACK_NAME = /^(localhost|[a-z0-9-]+\.localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[::1\])(:\d{1,5})?$/i;

/** DNS-rebinding protection (see the file comment): may this request's Host reach the studio? */
export function hostAllowed(headers: IncomingHttpHeaders, peer: Peer, config: Pick<ServerConfig, "host" | "trustProxy">): boolean {
  if (!LOOPBACK_LISTEN.test(config.host) || headers.host === undefined) return true;
  return LOOPBACK_NAME.test(headers.host) || trustedPeer(peer, config.trustProxy);
}

export const hostRefusal = "this studio answers only on localhost: the request's Host names another host (a DNS-rebinding guard; use http://localhost or http://127.0.0.1)";

export function hostPolicy(config: Pick<ServerConfig, "host" | "trustProxy">): RequestHandler {
  return (req, res, next) => {
    if (hostAllowed(req.headers, req.socket, config)) return next();
    res.status(403).json({ error: ErrorCode.Forbidden, message: hostRefusal });
  };
}

export const crossSiteRefusal = "cross-site requests are not allowed (the server's --cors-origins does not list this origin)";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export function crossSitePolicy(config: Pick<ServerConfig, "corsOrigins">): RequestHandler {
  const listed = new Set(config.corsOrigins);
  return (req, res, next) => {
    const origin = req.headers.origin;
    if (listed.size > 0) res.vary("Origin");
    if (origin !== undefined && listed.has(origin)) {
      res.set({ "Access-Control-Allow-Origin": origin });
      if (req.method === "OPTIONS") {
        res.set({ "Access-Control-Allow-Methods": "GET, POST", "Access-Control-Allow-Headers": "Content-Type, Authorization", "Access-Control-Max-Age": "600" });
        res.status(204).end();
        return;
      }
      return next();
    }
    if (!SAFE_METHODS.has(req.method) && !originAllowed(req.headers, config.corsOrigins)) {
      res.status(403).json({ error: ErrorCode.Forbidden, message: crossSiteRefusal });
      return;
    }
    next();
  };
}
