import type { CommandModule } from 'yargs';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Command = CommandModule<any, any>;

/**
 * Every `mcp-migrate` command by name, in `--help` order, each loaded on demand. An explicit list, not a
 * directory scan, so the bundle is static and the order is deliberate: analyze first (what to do), then the
 * two ways to do it, then probe (check a deployment). Loaded on demand because the proxy's modules (HTTP
 * client, Redis, metrics, logging) cost about half a second of CPU to load, which `analyze` does not need.
 */
export const COMMANDS: ReadonlyArray<{ name: string; load: () => Promise<Command> }> = [
  { name: 'analyze', load: async () => (await import('./analyze.js')).analyzeCommand },
  { name: 'apply', load: async () => (await import('./apply.js')).applyCommand },
  { name: 'proxy', load: async () => (await import('./proxy.js')).proxyCommand },
  { name: 'probe', load: async () => (await import('./probe.js')).probeCommand },
];

/**
 * The commands yargs needs for `args` (the arguments after the program name): only the named one when the
 * first argument names a command, every command otherwise (`--help`, `--version`, a typo to correct).
 */
export async function commandsFor(args: readonly string[]): Promise<Command[]> {
  const named = COMMANDS.find((c) => c.name === args[0]);
  return Promise.all((named ? [named] : COMMANDS).map((c) => c.load()));
}
