/**
 * The example servers shipped in `@modelcontextprotocol/sdk` 1.32.2 (a devDependency:
 * `dist/esm/examples/server/`), as real servers for `apply`. A copy of the package (`package.json`,
 * `dist/esm`) goes into a temporary directory, so the examples' relative imports (`../../server/…`,
 * `../shared/…`) resolve inside it; `apply` then rewrites the one example file it is given, as a user
 * whose server is that file would run it. Nothing of the SDK is committed here.
 */
import path from 'node:path';
import { REPO_ROOT } from './everything.js';
import type { ManagedProcess } from './processes.js';
import { copyServer, runApply, startServerReplicas, type ServerCopy } from './migrated.js';

export const SDK_ROOT = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'sdk');
/** Where the examples are, relative to a copy of the SDK package. */
export const SDK_EXAMPLES_DIR = 'dist/esm/examples/server';

export interface SdkExample {
  /** File name without `.js`. */
  name: string;
  /** Ports its code listens on whatever the environment says (mapped to a free port per replica), or its port variable. */
  fixedPorts?: number[];
  portEnv?: string;
}

/** Every example that opens sessions over Streamable HTTP, with how it picks its port. */
export const SDK_SESSION_EXAMPLES: readonly SdkExample[] = [
  { name: 'elicitationFormExample', portEnv: 'PORT' },
  { name: 'elicitationUrlExample', portEnv: 'MCP_PORT' },
  { name: 'jsonResponseStreamableHttp', fixedPorts: [3000] },
  { name: 'simpleStreamableHttp', portEnv: 'MCP_PORT' },
  { name: 'simpleTaskInteractive', portEnv: 'PORT' },
  { name: 'sseAndStreamableHttpCompatibleServer', fixedPorts: [3000] },
  { name: 'ssePollingExample', fixedPorts: [3001] },
  { name: 'standaloneSseWithGetStreamableHttp', fixedPorts: [3000] },
];

export function sdkExample(name: string): SdkExample {
  const e = SDK_SESSION_EXAMPLES.find((x) => x.name === name);
  if (!e) throw new Error(`unknown SDK example ${name}`);
  return e;
}

/** The example's file, relative to a copy of the SDK package. */
export function exampleEntry(name: string): string {
  return `${SDK_EXAMPLES_DIR}/${name}.js`;
}

/** A copy of the SDK package (`package.json`, `dist/esm`) with linked `node_modules`. */
export function copySdk(prefix: string): ServerCopy {
  return copyServer(prefix, SDK_ROOT, ['package.json', 'dist/esm']);
}

/** A copy of the SDK package in which `apply --store redis` migrated one example file. */
export async function migrateSdkExample(name: string): Promise<ServerCopy & { applyOutput: string; applyExitCode: number }> {
  const copy = copySdk(`apply-${name}`);
  const run = await runApply(copy.dir, [exampleEntry(name)]);
  return { ...copy, applyOutput: run.output, applyExitCode: run.code };
}

/** Starts `count` replicas of an example from a copy (migrated ones with `storeUrl`). */
export async function startSdkExample(dir: string, name: string, count: number, storeUrl?: string): Promise<{ process: ManagedProcess; hostPort: string }[]> {
  const e = sdkExample(name);
  return await startServerReplicas(dir, count, `${name}${storeUrl ? '-migrated' : ''}`, {
    args: [exampleEntry(name)],
    storeUrl,
    fixedPorts: e.fixedPorts,
    env: (port) => (e.portEnv ? { [e.portEnv]: String(port) } : {}),
  });
}
