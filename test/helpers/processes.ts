/**
 * Child processes for integration tests: spawn with captured output, wait until ready, stop for sure.
 *
 * Every child is started in its own process group (`detached: true`), so `stop()` signals the whole
 * group: a wrapper and whatever it spawned (e.g. the proxy and its stdio MCP server) go together.
 * Every child is tracked until it exits; `stopAllProcesses()` (call it in `afterAll`) stops what is
 * left, and a synchronous `exit` hook SIGKILLs any group still alive if the test process goes away.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { waitForPort } from './ports.js';

export interface SpawnOptions {
  /** Short label used in error messages, e.g. `redis` or `proxy-2`. */
  name: string;
  cwd?: string;
  /** Added to (and overriding) the parent's environment. */
  env?: NodeJS.ProcessEnv;
  /** How many bytes of combined stdout+stderr to keep (the tail). Default 1 MiB. */
  maxOutputBytes?: number;
  /** Write every output chunk to the parent's stderr as well (debugging). Default: env `TEST_ECHO_CHILDREN=1`. */
  echo?: boolean;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Settles when the child has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  /** `undefined` while running. */
  exitInfo(): ExitInfo | undefined;
  /** The kept tail of combined stdout+stderr. */
  output(): string;
  /** Resolve with the first match of `pattern` in the output (past or future); reject on exit or timeout. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Resolve once `127.0.0.1:port` accepts connections; reject early if the child exits. */
  waitForPort(port: number, timeoutMs?: number): Promise<void>;
  /** Signal the process group, escalate to SIGKILL after `timeoutMs`, wait for exit. Idempotent. */
  stop(opts?: { signal?: NodeJS.Signals; timeoutMs?: number }): Promise<ExitInfo>;
}

const live = new Set<ManagedProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const p of live) killGroup(p.pid, 'SIGKILL', true);
  });
}

/**
 * Signal process group `pid`. Only while the leader is known to be alive may we fall back to the
 * single pid (a pid is never reused while its group exists, but a lone pid may be once it exited).
 */
function killGroup(pid: number, signal: NodeJS.Signals, leaderAlive = false): boolean {
  try {
    process.kill(-pid, signal);
    return true;
  } catch {
    if (!leaderAlive) return false;
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  }
}

/** Spawn `command args…` in a new process group, capturing its output. */
export function spawnManaged(command: string, args: readonly string[], opts: SpawnOptions): ManagedProcess {
  installExitHook();
  const maxBytes = opts.maxOutputBytes ?? 1024 * 1024;
  const echo = opts.echo ?? process.env.TEST_ECHO_CHILDREN === '1';
  const child = spawn(command, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  if (child.pid === undefined) {
    // spawn failed (ENOENT etc. also arrives as an 'error' event, which must not go unhandled).
    child.on('error', () => undefined);
    throw new Error(`${opts.name}: could not spawn ${command} (is it installed and on PATH?)`);
  }
  const pid = child.pid;
  let out = '';
  let info: ExitInfo | undefined;
  const listeners = new Set<() => void>();
  const append = (chunk: Buffer): void => {
    const text = chunk.toString('utf8');
    if (echo) process.stderr.write(`[${opts.name}] ${text}`);
    out += text;
    if (out.length > maxBytes) out = out.slice(out.length - maxBytes);
    for (const l of listeners) l();
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  let spawnError: Error | undefined;
  child.on('error', (err) => {
    spawnError = err;
    out += `\n[spawn error] ${err.message}\n`;
  });
  const exited = new Promise<ExitInfo>((resolve) => {
    // 'exit', not 'close': a grandchild that inherited our pipes would hold 'close' back.
    child.on('exit', (code, signal) => {
      info = { code, signal };
      live.delete(managed);
      // Anything the leader left behind in its group (e.g. a stdio server under a crashed proxy) goes too,
      // right away, while the group id cannot have been reused.
      killGroup(pid, 'SIGKILL');
      for (const l of listeners) l();
      resolve(info);
    });
  });

  const describeExit = (): string =>
    `${opts.name} exited early (code ${info?.code}, signal ${info?.signal})${spawnError ? `: ${spawnError.message}` : ''}\n--- output tail ---\n${out.slice(-4000)}`;

  const managed: ManagedProcess = {
    name: opts.name,
    pid,
    child,
    exited,
    exitInfo: () => info,
    output: () => out,
    waitForOutput(pattern, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const m = out.match(pattern);
          if (m) {
            done();
            resolve(m);
            return true;
          }
          if (info) {
            done();
            reject(new Error(`waiting for ${pattern}: ${describeExit()}`));
            return true;
          }
          return false;
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${opts.name}: timed out after ${timeoutMs} ms waiting for ${pattern}\n--- output tail ---\n${out.slice(-4000)}`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          listeners.delete(listener);
        };
        const listener = (): void => {
          check();
        };
        listeners.add(listener);
        check();
      });
    },
    async waitForPort(port, timeoutMs = 15_000) {
      const ac = new AbortController();
      const onExit = exited.then(() => {
        ac.abort(new Error(describeExit()));
        throw new Error(describeExit());
      });
      try {
        await Promise.race([waitForPort(port, { timeoutMs, signal: ac.signal }), onExit]);
      } catch (err) {
        if (info) throw new Error(describeExit());
        throw new Error(`${opts.name}: ${(err as Error).message}\n--- output tail ---\n${out.slice(-4000)}`);
      } finally {
        ac.abort();
        onExit.catch(() => undefined);
      }
    },
    async stop({ signal = 'SIGTERM', timeoutMs = 5_000 } = {}) {
      if (info) return info;
      killGroup(pid, signal, true);
      let timer: NodeJS.Timeout | undefined;
      const killed = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          killGroup(pid, 'SIGKILL', info === undefined);
          resolve();
        }, timeoutMs);
      });
      await Promise.race([exited, killed]);
      clearTimeout(timer);
      return exited; // the 'close' handler has SIGKILLed anything left in the group
    },
  };
  live.add(managed);
  return managed;
}

/** Stop every child still tracked (all of them, in parallel). Use in `afterAll`. */
export async function stopAllProcesses(opts?: { timeoutMs?: number }): Promise<void> {
  await Promise.all([...live].map((p) => p.stop({ timeoutMs: opts?.timeoutMs })));
}

/** Names and pids of children not yet exited (for assertions and debugging). */
export function liveProcesses(): { name: string; pid: number }[] {
  return [...live].map((p) => ({ name: p.name, pid: p.pid }));
}
