/**
 * A real `redis-server` for integration tests and benchmarks.
 *
 * Runs on a free loopback port in its own temp dir, with persistence off
 * (`--save '' --appendonly no`; `appendOnly: true` turns the AOF on), bound to 127.0.0.1 only. `startRedis()` resolves once the server
 * answers PING. The helpers talk RESP over a plain socket (no client library), so they add no
 * background traffic of their own: `commandStats()` deltas count only what the code under test sent,
 * plus the `INFO` calls themselves (reported as `info`; subtract or ignore them).
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { getFreePort } from './ports.js';
import { spawnManaged, type ManagedProcess } from './processes.js';
import { requireIntegrationProject } from './project-guard.js';

export interface StartRedisOptions {
  /** Fixed port; default: a free one. */
  port?: number;
  /** Extra `redis-server` arguments, e.g. `['--maxmemory', '64mb']`. */
  extraArgs?: string[];
  /** Process label. Default `redis`. */
  name?: string;
  /** Binary. Default `redis-server` on PATH. */
  binary?: string;
  /**
   * Turn the append-only file on (`--appendonly yes --appendfsync always`, in the instance's temp dir),
   * so data survives `restart()`, even with `signal: 'SIGKILL'`. Default false (no persistence).
   */
  appendOnly?: boolean;
}

export interface RedisRestartOptions {
  /** Signal that stops the server. Default `SIGTERM`; `SIGKILL` simulates a crash. */
  signal?: NodeJS.Signals;
  /** How long to stay down before starting again, ms. Default 0. */
  downMs?: number;
}

export interface CommandStat {
  calls: number;
  usec: number;
  rejectedCalls: number;
  failedCalls: number;
}

export interface RedisInstance {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  process(): ManagedProcess;
  /** Send one command and return the decoded reply (errors reject). */
  command(...args: (string | number)[]): Promise<RedisReply>;
  /** `INFO commandstats` parsed: lower-case command name (`get`, `hset`, `client|setname`, …) → stats. */
  commandStats(): Promise<Map<string, CommandStat>>;
  /** `CONFIG RESETSTAT` (zero the command stats). */
  resetStats(): Promise<void>;
  /** Number of keys in db 0. */
  dbsize(): Promise<number>;
  /** All keys matching `pattern` (SCAN, bounded). */
  keys(pattern?: string): Promise<string[]>;
  /**
   * Stop (SIGTERM, or `opts.signal`), stay down for `opts.downMs`, and start again on the same port.
   * Without `appendOnly` all data is lost; with it, the data comes back from the append-only file.
   */
  restart(opts?: RedisRestartOptions): Promise<void>;
  /** Stop without removing the temp dir (see `stop`). */
  kill(): Promise<void>;
  /** Stop the server and remove its temp dir. Idempotent. */
  stop(): Promise<void>;
}

export type RedisReply = string | number | null | RedisReply[];

/** Start `redis-server` on a free loopback port and wait for PING. Retries a taken port twice. */
export async function startRedis(opts: StartRedisOptions = {}): Promise<RedisInstance> {
  requireIntegrationProject('redis-server');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-migrate-redis-'));
  const binary = opts.binary ?? 'redis-server';
  const name = opts.name ?? 'redis';
  let port = 0;
  let proc: ManagedProcess | undefined;
  const argsFor = (p: number): string[] => [
    '--port', String(p),
    '--bind', '127.0.0.1',
    '--save', '',
    '--appendonly', opts.appendOnly ? 'yes' : 'no',
    ...(opts.appendOnly ? ['--appendfsync', 'always'] : []),
    '--dir', dir,
    '--daemonize', 'no',
    '--protected-mode', 'yes',
    '--logfile', '',
    ...(opts.extraArgs ?? []),
  ];
  /** Start on `p` and wait for PING; on failure stop the candidate and throw. */
  const launchOn = async (p: number): Promise<void> => {
    const candidate = spawnManaged(binary, argsFor(p), { name, cwd: dir });
    try {
      // The log line proves the port is this redis-server's (not another process's that took it).
      await candidate.waitForOutput(/Ready to accept connections/, 10_000);
      await candidate.waitForPort(p, 5_000);
      await waitForPing(p, 10_000);
    } catch (err) {
      await candidate.stop({ timeoutMs: 2_000 });
      throw err;
    }
    port = p;
    proc = candidate;
  };

  let lastError: unknown;
  for (let attempt = 0; attempt < (opts.port === undefined ? 3 : 1) && !proc; attempt += 1) {
    try {
      await launchOn(opts.port ?? (await getFreePort()));
    } catch (err) {
      lastError = err;
    }
  }
  if (!proc) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`could not start ${binary}: ${String(lastError)}`);
  }

  let removed = false;
  const instance: RedisInstance = {
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    dir,
    process: () => {
      if (!proc) throw new Error('redis is not running');
      return proc;
    },
    command: (...args) => redisCommand(port, args),
    async commandStats() {
      const text = await redisCommand(port, ['INFO', 'commandstats']);
      return parseCommandStats(String(text));
    },
    async resetStats() {
      await redisCommand(port, ['CONFIG', 'RESETSTAT']);
    },
    async dbsize() {
      return Number(await redisCommand(port, ['DBSIZE']));
    },
    async keys(pattern = '*') {
      const found = new Set<string>();
      let cursor = '0';
      for (let i = 0; i < 10_000; i += 1) {
        const reply = (await redisCommand(port, ['SCAN', cursor, 'MATCH', pattern, 'COUNT', 1000])) as [string, string[]];
        cursor = reply[0];
        for (const k of reply[1]) found.add(k);
        if (cursor === '0') break;
      }
      return [...found].sort();
    },
    async restart(restartOpts: RedisRestartOptions = {}) {
      await proc?.stop(restartOpts.signal ? { signal: restartOpts.signal } : undefined);
      proc = undefined;
      if (restartOpts.downMs) await new Promise((r) => setTimeout(r, restartOpts.downMs));
      const fixed = port;
      let lastErr: unknown;
      // Same port, so clients can reconnect; right after a stop the port may briefly still be busy.
      for (let attempt = 0; attempt < 5 && !proc; attempt += 1) {
        try {
          await launchOn(fixed);
        } catch (err) {
          lastErr = err;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      if (!proc) throw new Error(`redis restart on port ${fixed} failed: ${String(lastErr)}`);
    },
    async kill() {
      await proc?.stop();
      proc = undefined;
    },
    async stop() {
      await proc?.stop();
      proc = undefined;
      if (!removed) {
        removed = true;
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
  return instance;
}

/** Parse the text of `INFO commandstats`. */
export function parseCommandStats(info: string): Map<string, CommandStat> {
  const stats = new Map<string, CommandStat>();
  for (const line of info.split(/\r?\n/)) {
    const m = /^cmdstat_([^:]+):(.*)$/.exec(line.trim());
    if (!m) continue;
    const fields = new Map<string, number>();
    for (const kv of m[2]!.split(',')) {
      const [k, v] = kv.split('=');
      if (k !== undefined && v !== undefined) fields.set(k, Number(v));
    }
    stats.set(m[1]!.toLowerCase(), {
      calls: fields.get('calls') ?? 0,
      usec: fields.get('usec') ?? 0,
      rejectedCalls: fields.get('rejected_calls') ?? 0,
      failedCalls: fields.get('failed_calls') ?? 0,
    });
  }
  return stats;
}

/** `after - before` per command (only commands with a positive difference), without `info`/`config|resetstat`. */
export function diffCommandStats(before: Map<string, CommandStat>, after: Map<string, CommandStat>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [cmd, stat] of after) {
    if (cmd === 'info' || cmd.startsWith('config')) continue;
    const d = stat.calls - (before.get(cmd)?.calls ?? 0);
    if (d > 0) out.set(cmd, d);
  }
  return out;
}

async function waitForPing(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if ((await redisCommand(port, ['PING'])) === 'PONG') return;
    } catch (err) {
      last = err; // e.g. "LOADING"
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis on port ${port} did not answer PING: ${String(last)}`);
}

/** Send one command over a fresh connection and decode the reply (RESP2). */
export function redisCommand(port: number, args: readonly (string | number)[], timeoutMs = 5_000): Promise<RedisReply> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`redis ${String(args[0])}: no reply within ${timeoutMs} ms`));
    }, timeoutMs);
    const finish = (err: Error | null, value?: RedisReply): void => {
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(value as RedisReply);
    };
    socket.once('error', (err) => finish(err));
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      try {
        const parsed = parseReply(buf, 0);
        if (parsed) finish(null, parsed.value);
      } catch (err) {
        finish(err as Error);
      }
    });
    socket.once('connect', () => {
      const parts = args.map(String);
      let req = `*${parts.length}\r\n`;
      for (const p of parts) req += `$${Buffer.byteLength(p)}\r\n${p}\r\n`;
      socket.write(req);
    });
  });
}

/** Decode one RESP2 value at `offset`, or `undefined` if the buffer is incomplete. Error replies throw. */
function parseReply(buf: Buffer, offset: number): { value: RedisReply; end: number } | undefined {
  const lineEnd = buf.indexOf('\r\n', offset);
  if (lineEnd === -1) return undefined;
  const type = String.fromCharCode(buf[offset]!);
  const line = buf.toString('utf8', offset + 1, lineEnd);
  switch (type) {
    case '+':
      return { value: line, end: lineEnd + 2 };
    case '-':
      throw new Error(`redis error: ${line}`);
    case ':':
      return { value: Number(line), end: lineEnd + 2 };
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, end: lineEnd + 2 };
      const start = lineEnd + 2;
      if (buf.length < start + len + 2) return undefined;
      return { value: buf.toString('utf8', start, start + len), end: start + len + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, end: lineEnd + 2 };
      const items: RedisReply[] = [];
      let pos = lineEnd + 2;
      for (let i = 0; i < n; i += 1) {
        const item = parseReply(buf, pos);
        if (!item) return undefined;
        items.push(item.value);
        pos = item.end;
      }
      return { value: items, end: pos };
    }
    default:
      throw new Error(`unexpected RESP type byte ${JSON.stringify(type)}`);
  }
}
