/**
 * The harness itself: real redis-server, real nginx round-robin, process cleanup, and the scenario
 * against a single server-everything (the control that makes the baseline failure meaningful).
 */
import fs from 'node:fs';
import http from 'node:http';
import { afterAll, describe, expect, it } from 'vitest';
import {
  diffCommandStats,
  formatReport,
  getFreePort,
  liveProcesses,
  runScenarios,
  spawnManaged,
  startEverythingHttp,
  startNginx,
  startRedis,
  stopAllProcesses,
} from '../helpers/index.js';

afterAll(async () => {
  await stopAllProcesses();
});

/** Alive and not a zombie (an orphaned zombie waits for whoever is pid 1 to reap it). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/** A tiny HTTP server that answers with its own name, to see where nginx sent each request. */
async function nameServer(name: string): Promise<{ hostPort: string; close(): Promise<void> }> {
  const port = await getFreePort();
  const server = http.createServer((_req, res) => {
    res.setHeader('content-type', 'text/plain');
    res.end(name);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    hostPort: `127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('redis helper', () => {
  it('starts redis-server on a loopback port, counts commands, restarts empty, stops', async () => {
    const redis = await startRedis();
    try {
      expect(redis.url).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/);
      const before = await redis.commandStats();
      await redis.command('SET', 'k1', 'v1');
      await redis.command('SET', 'k2', 'v2');
      expect(await redis.command('GET', 'k1')).toBe('v1');
      const delta = diffCommandStats(before, await redis.commandStats());
      expect(delta.get('set')).toBe(2);
      expect(delta.get('get')).toBe(1);
      expect(await redis.keys('k*')).toEqual(['k1', 'k2']);
      await redis.restart();
      expect(await redis.dbsize()).toBe(0); // persistence is off
      expect(await redis.command('PING')).toBe('PONG');
    } finally {
      await redis.stop();
    }
    await expect(redis.command('PING')).rejects.toThrow();
  });
});

describe('nginx helper', () => {
  it('alternates strictly between upstreams, even over one keep-alive client connection', async () => {
    const backends = await Promise.all(['a', 'b', 'c'].map(nameServer));
    const nginx = await startNginx({ upstreams: backends.map((b) => b.hostPort) });
    try {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const seen: string[] = [];
      for (let i = 0; i < 9; i += 1) {
        seen.push(
          await new Promise<string>((resolve, reject) => {
            http
              .get(`${nginx.url}/x`, { agent }, (res) => {
                let body = '';
                res.on('data', (c) => (body += c));
                res.on('end', () => resolve(body));
              })
              .on('error', reject);
          }),
        );
      }
      agent.destroy();
      // One client socket, yet every request went to the next replica in turn.
      expect(new Set(seen.slice(0, 3)).size).toBe(3);
      for (let i = 3; i < 9; i += 1) expect(seen[i]).toBe(seen[i - 3]);
      const log = nginx.accessLog();
      expect(log).toHaveLength(9);
      expect(new Set(log.map((e) => e.upstream))).toEqual(new Set(backends.map((b) => b.hostPort)));
    } finally {
      await nginx.stop();
      await Promise.all(backends.map((b) => b.close()));
    }
  });
});

describe('process helper', () => {
  it('kills the whole process group, and reports early exits with their output', async () => {
    // A shell that starts a grandchild (sleep) and waits: stop() must take both down.
    const proc = spawnManaged('sh', ['-c', 'sleep 300 & echo started-$!; wait'], { name: 'sh-with-child' });
    const m = await proc.waitForOutput(/started-(\d+)/);
    const grandchild = Number(m[1]);
    expect(() => process.kill(grandchild, 0)).not.toThrow();
    await proc.stop();
    // Bounded wait for the signal to land.
    let alive = true;
    for (let i = 0; i < 50 && alive; i += 1) {
      alive = isRunning(grandchild);
      if (alive) await new Promise((r) => setTimeout(r, 20));
    }
    expect(alive).toBe(false);
    expect(liveProcesses().find((p) => p.pid === proc.pid)).toBeUndefined();

    const failing = spawnManaged('sh', ['-c', 'echo boom >&2; exit 3'], { name: 'failing' });
    await expect(failing.waitForOutput(/never printed/)).rejects.toThrow(/exited early \(code 3[\s\S]*boom/);
  });
});

describe('scenario against one server-everything (control)', () => {
  it('passes every step on a single replica; only the 404 check differs (server-everything answers 400)', async () => {
    const server = await startEverythingHttp();
    try {
      // Without a load balancer in between, the session works end to end…
      const ok = await runScenarios(server.url, { sessions: 10, concurrency: 5, terminatedSessionStatus: 400 });
      expect(ok.failed, formatReport(ok)).toBe(0);
      // …and the strict scenario fails only at its last step, on server-everything's 400-instead-of-404.
      const strict = await runScenarios(server.url, { sessions: 3, concurrency: 3 });
      expect(strict.failuresByStep, formatReport(strict)).toEqual({ 'after-delete-404': 3 });
      expect(strict.results[0]!.httpStatus).toBe(400);
      expect(strict.results[0]!.error).toMatch(/No valid session ID provided/);
    } finally {
      await server.stop();
    }
  });
});
