/**
 * Graceful shutdown settings of the runtime's registries from the environment, and the signal handler
 * that drains a replica (docs/runtime.md "Graceful hand-over").
 */

/** Default `MCP_MIGRATE_SHUTDOWN_TIMEOUT`: how long a drain waits for in-flight requests, seconds. */
export const DEFAULT_SHUTDOWN_TIMEOUT_S = 10;

export interface ShutdownSettings {
  /** Longest drain, ms (`MCP_MIGRATE_SHUTDOWN_TIMEOUT`, seconds; default 10). */
  timeoutMs: number;
  /** Whether SIGTERM and SIGINT drain the replica (`MCP_MIGRATE_SHUTDOWN_SIGNALS=on|off`; default on). */
  signals: boolean;
}

/** Reads `MCP_MIGRATE_SHUTDOWN_TIMEOUT` (seconds, ≥ 0) and `MCP_MIGRATE_SHUTDOWN_SIGNALS` (`on`/`off`). @throws RangeError for invalid values. */
export function shutdownFromEnv(env: NodeJS.ProcessEnv = process.env): ShutdownSettings {
  const rawTimeout = env.MCP_MIGRATE_SHUTDOWN_TIMEOUT ?? String(DEFAULT_SHUTDOWN_TIMEOUT_S);
  const seconds = Number(rawTimeout);
  if (rawTimeout.trim() === '' || !Number.isFinite(seconds) || seconds < 0) throw new RangeError(`MCP_MIGRATE_SHUTDOWN_TIMEOUT must be a number of seconds ≥ 0, got "${rawTimeout}"`);
  const rawSignals = env.MCP_MIGRATE_SHUTDOWN_SIGNALS ?? 'on';
  if (rawSignals !== 'on' && rawSignals !== 'off') throw new RangeError(`MCP_MIGRATE_SHUTDOWN_SIGNALS must be on or off, got "${rawSignals}"`);
  return { timeoutMs: seconds * 1000, signals: rawSignals === 'on' };
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/**
 * On the first SIGTERM or SIGINT, runs `drain`; then, unless the program has a handler of its own for
 * that signal (which decides when to exit; it should `await registry.drain()` first), raises the signal
 * again with no handler left, so the process ends as it would have without this one. A second signal
 * during the drain ends the process at once. Returns the function that removes the handler.
 */
export function drainOnSignals(drain: () => Promise<unknown>, log: (message: string) => void): () => void {
  const remove = (): void => {
    for (const s of SIGNALS) process.off(s, onSignal);
  };
  function onSignal(signal: NodeJS.Signals): void {
    remove();
    log(`${signal}: draining (in-flight requests finish, sessions are handed over) before exiting`);
    void drain()
      .catch((err: unknown) => log(`drain failed: ${(err as Error).message}`))
      .finally(() => {
        if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
      });
  }
  for (const s of SIGNALS) process.on(s, onSignal);
  return remove;
}
