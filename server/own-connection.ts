/**
 * Whether a loopback connection comes from this very process: the share tunnel's client runs
 * in-process (localtunnel's TunnelCluster, ngrok's embedded agent), so a connection to the tunnel's
 * private entry whose other end is one of our own sockets is the tunnel's, and one from anywhere
 * else (another local process that found the port) is not. Linux tells through /proc: the peer's
 * socket is the line of /proc/net/tcp{,6} whose local port is the connection's remote port and whose
 * remote port is ours, and it is ours when one of /proc/self/fd links to its inode. Elsewhere the
 * answer is null (cannot tell).
 */
import { readdir, readFile, readlink } from "node:fs/promises";
import type { Socket } from "node:net";

const hexPort = (p: number) => ":" + p.toString(16).toUpperCase().padStart(4, "0");

export async function fromThisProcess(socket: Socket): Promise<boolean | null> {
  if (process.platform !== "linux" || !socket.remotePort || !socket.localPort) return null;
  try {
    const peer = hexPort(socket.remotePort), us = hexPort(socket.localPort);
    const tables = await Promise.all(["/proc/net/tcp", "/proc/net/tcp6"].map((f) => readFile(f, "utf8").catch(() => "")));
    let inode: string | undefined;
    for (const line of tables.join("\n").split("\n")) {
      const cols = line.trim().split(/\s+/); // sl, local, remote, st, queues, tr, retrnsmt, uid, timeout, inode
      if (cols.length > 9 && cols[1].endsWith(peer) && cols[2].endsWith(us)) {
        inode = cols[9];
        break;
      }
    }
    if (!inode || inode === "0") return false;
    const want = `socket:[${inode}]`;
    for (const fd of await readdir("/proc/self/fd")) {
      if ((await readlink(`/proc/self/fd/${fd}`).catch(() => "")) === want) return true;
    }
    return false;
  } catch {
    return null;
  }
}
