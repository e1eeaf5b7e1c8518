/**
 * A localtunnel server for the share tests, on 127.0.0.1 only: this machine has no internet, and
 * tests never point at a public tunnel host. It speaks what the localtunnel client expects:
 *   - GET /?new (or /<name>) on the bare host creates a tunnel: a TCP port for the client's
 *     connections, and the answer { id, url, port, max_conn_count };
 *   - a request whose Host is <id>.localhost:<port> goes down one of that client's connections,
 *     raw, with X-Forwarded-For/-Proto added as a real edge adds them. Plain requests go through
 *     http.request over the connection; WebSocket upgrades are piped both ways. Each public
 *     connection uses up one tunnel connection, and the client opens a new one.
 * drop(id) forgets a tunnel (closes its port and connections), as a restarted server would.
 *
 * Node does not resolve *.localhost; `agent` (for http.request and socket.io-client) and
 * `lookup` map those names to 127.0.0.1.
 */
import dns from "node:dns";
import http from "node:http";
import net from "node:net";

interface Client {
  id: string;
  tcp: net.Server;
  port: number;
  idle: net.Socket[];
  waiting: ((s: net.Socket) => void)[];
  connections: Set<net.Socket>;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;

/** dns.lookup, except that *.localhost is 127.0.0.1. */
export function lookup(hostname: string, options: dns.LookupOptions, callback: LookupCallback): void {
  if (hostname === "localhost" || hostname.endsWith(".localhost")) {
    if (options?.all) callback(null, [{ address: "127.0.0.1", family: 4 }]);
    else callback(null, "127.0.0.1", 4);
    return;
  }
  dns.lookup(hostname, options, callback as never);
}

export class TunnelServer {
  readonly clients = new Map<string, Client>();
  /** Requests and upgrades forwarded to tunnels, per tunnel id. */
  readonly forwarded = new Map<string, number>();
  /** The `/?new` and `/<name>` requests seen. */
  readonly created: string[] = [];
  readonly agent = new http.Agent({ lookup: lookup as never, keepAlive: false });
  /** The address the edge appends to X-Forwarded-For; null: the public client's own (loopback here). Tests set it to play distinct public clients. */
  edgeAddress: string | null = null;
  private readonly front: http.Server;
  private next = 0;

  private constructor(readonly maxConn: number) {
    this.front = http.createServer((req, res) => this.onRequest(req, res));
    this.front.on("upgrade", (req, socket, head) => this.onUpgrade(req, socket as net.Socket, head));
  }

  static async start({ maxConn = 8 } = {}): Promise<TunnelServer> {
    const server = new TunnelServer(maxConn);
    await new Promise<void>((resolve) => server.front.listen(0, "127.0.0.1", resolve));
    return server;
  }

  get port(): number {
    return (this.front.address() as net.AddressInfo).port;
  }

  /** What --share-host gets. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Open tunnel connections of a client. */
  connections(id: string): number {
    return this.clients.get(id)?.connections.size ?? 0;
  }

  drop(id: string): void {
    const c = this.clients.get(id);
    if (!c) return;
    this.clients.delete(id);
    c.tcp.close();
    for (const s of c.connections) s.destroy();
  }

  async close(): Promise<void> {
    for (const id of [...this.clients.keys()]) this.drop(id);
    this.front.closeAllConnections();
    await new Promise<void>((resolve) => this.front.close(() => resolve()));
    this.agent.destroy();
  }

  private tunnelFor(host: string | undefined): Client | null | undefined {
    const m = /^([a-z0-9-]+)\.localhost(?::\d+)?$/.exec(host ?? "");
    return m ? (this.clients.get(m[1]) ?? null) : undefined;
  }

  private async create(name: string | null): Promise<Client> {
    const id = name && !this.clients.has(name) ? name : `tunnel${++this.next}${Math.random().toString(36).slice(2, 8)}`;
    const client: Client = { id, tcp: net.createServer(), port: 0, idle: [], waiting: [], connections: new Set() };
    client.tcp.on("connection", (s) => {
      client.connections.add(s);
      s.on("error", () => undefined);
      s.once("close", () => {
        client.connections.delete(s);
        client.idle = client.idle.filter((x) => x !== s);
      });
      const waiter = client.waiting.shift();
      if (waiter) waiter(s);
      else client.idle.push(s);
    });
    await new Promise<void>((resolve) => client.tcp.listen(0, "127.0.0.1", resolve));
    client.port = (client.tcp.address() as net.AddressInfo).port;
    this.clients.set(id, client);
    return client;
  }

  /** One of the client's connections, waiting up to 3 s for one. */
  private take(client: Client): Promise<net.Socket> {
    const s = client.idle.shift();
    if (s) return Promise.resolve(s);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        client.waiting = client.waiting.filter((w) => w !== give);
        reject(new Error("no tunnel connection"));
      }, 3000);
      const give = (sock: net.Socket) => {
        clearTimeout(timer);
        resolve(sock);
      };
      client.waiting.push(give);
    });
  }

  private forwardedHeaders(req: http.IncomingMessage): Record<string, string> {
    const prior = req.headers["x-forwarded-for"];
    return { "x-forwarded-for": `${prior ? `${prior}, ` : ""}${this.edgeAddress ?? req.socket.remoteAddress}`, "x-forwarded-proto": "http" };
  }

  private count(id: string): void {
    this.forwarded.set(id, (this.forwarded.get(id) ?? 0) + 1);
  }

  private async onRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const client = this.tunnelFor(req.headers.host);
    if (client === undefined) {
      // The tunnel server's own API.
      const name = req.url === "/?new" ? null : /^\/([a-z0-9-]+)$/.exec(req.url ?? "")?.[1];
      if (name === undefined) {
        res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ message: "not found" }));
        return;
      }
      this.created.push(req.url!);
      const c = await this.create(name);
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ id: c.id, port: c.port, max_conn_count: this.maxConn, url: `http://${c.id}.localhost:${this.port}` }));
      return;
    }
    if (client === null) {
      res.writeHead(404, { "content-type": "text/plain" }).end("no such tunnel\n");
      return;
    }
    let socket: net.Socket;
    try {
      socket = await this.take(client);
    } catch {
      res.writeHead(504, { "content-type": "text/plain" }).end("the tunnel client is not connected\n");
      return;
    }
    this.count(client.id);
    const upstream = http.request({ method: req.method, path: req.url, headers: { ...req.headers, connection: "close", ...this.forwardedHeaders(req) }, createConnection: () => socket });
    upstream.on("response", (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    upstream.on("error", () => {
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" }).end("tunnel error\n");
      else res.destroy();
    });
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }

  private async onUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer): Promise<void> {
    socket.on("error", () => undefined);
    const client = this.tunnelFor(req.headers.host);
    if (!client) return void socket.end("HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n");
    let tunnel: net.Socket;
    try {
      tunnel = await this.take(client);
    } catch {
      return void socket.end("HTTP/1.1 504 Gateway Timeout\r\nconnection: close\r\n\r\n");
    }
    this.count(client.id);
    const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      if (!/^x-forwarded-(for|proto)$/i.test(req.rawHeaders[i])) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    }
    for (const [k, v] of Object.entries(this.forwardedHeaders(req))) lines.push(`${k}: ${v}`);
    tunnel.write(lines.join("\r\n") + "\r\n\r\n");
    if (head.length > 0) tunnel.write(head);
    tunnel.pipe(socket).pipe(tunnel);
    const end = () => {
      socket.destroy();
      tunnel.destroy();
    };
    socket.once("close", end);
    tunnel.once("close", end);
  }
}
