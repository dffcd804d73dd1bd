/**
 * Free loopback ports for test services.
 *
 * The port is found by binding 127.0.0.1:0 and closing the socket again, so there is a short window in
 * which another process could take it. Starters in this folder (`startRedis`, `startNginx`, …) retry
 * on a bind failure, which makes that window harmless in practice.
 */
import net from 'node:net';

/**
 * Ports this process has handed out. The OS may give the same ephemeral port to two `listen(0)`
 * calls in a row once the first socket is closed; two services started in parallel would then race
 * for one port (and a readiness check could connect to the wrong one). Never hand a port out twice.
 */
const handedOut = new Set<number>();

/** A TCP port that was free on 127.0.0.1 a moment ago and that this process has not handed out before. */
export async function getFreePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const port = await bindEphemeral();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('getFreePort: the OS kept returning ports already handed out');
}

function bindEphemeral(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error(`unexpected server address: ${String(address)}`));
        return;
      }
      const { port } = address;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/** `n` distinct free loopback ports. */
export async function getFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  // Bounded: the OS hands out distinct ephemeral ports, so a handful of extra tries is plenty.
  for (let attempt = 0; ports.size < n && attempt < n * 5; attempt += 1) {
    ports.add(await getFreePort());
  }
  if (ports.size < n) throw new Error(`could not find ${n} distinct free ports`);
  return [...ports];
}

/** Resolve once `host:port` accepts a TCP connection; reject after `timeoutMs`. */
export async function waitForPort(
  port: number,
  opts: { host?: string; timeoutMs?: number; intervalMs?: number; signal?: AbortSignal } = {},
): Promise<void> {
  const host = opts.host ?? '127.0.0.1';
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  const interval = opts.intervalMs ?? 50;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (opts.signal?.aborted) throw opts.signal.reason instanceof Error ? opts.signal.reason : new Error('aborted');
    try {
      await new Promise<void>((resolve, reject) => {
        const socket = net.connect({ host, port });
        socket.once('connect', () => {
          socket.destroy();
          resolve();
        });
        socket.once('error', (err) => {
          socket.destroy();
          reject(err);
        });
      });
      return;
    } catch (err) {
      lastError = err;
    }
    await new Promise((r) => setTimeout(r, interval));
  }
  throw new Error(`timed out waiting for ${host}:${port} to accept connections (last error: ${String(lastError)})`);
}
