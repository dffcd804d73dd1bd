/**
 * The example servers shipped in `@modelcontextprotocol/sdk` 1.32.2 (a devDependency:
 * `dist/esm/examples/server/`), as real servers for `apply`. Each run gets a temporary project whose
 * `package.json` depends on the SDK and whose `node_modules/@modelcontextprotocol/sdk` is a real copy
 * of the package (`package.json`, `dist/esm`; the other dependencies are links to this repository's),
 * so the examples' relative imports (`../../server/…`, `../shared/…`) resolve inside the copy and the
 * analyzer knows the SDK by where it is installed. `apply` rewrites the example file it is given (with
 * the example's own modules where it has some, `modules`), as a user whose server is that code would run it; the project's `package.json` gets the runtime.
 * Nothing of the SDK is committed here.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './everything.js';
import type { ManagedProcess } from './processes.js';
import { runApply, startServerReplicas, type ServerCopy } from './migrated.js';

export const SDK_ROOT = path.join(REPO_ROOT, 'node_modules', '@modelcontextprotocol', 'sdk');
/** Where the examples are, relative to the temporary project. */
export const SDK_EXAMPLES_DIR = 'node_modules/@modelcontextprotocol/sdk/dist/esm/examples/server';

export interface SdkExample {
  /** File name without `.js`. */
  name: string;
  /** Ports its code listens on whatever the environment says (mapped to a free port per replica), or its port variable. */
  fixedPorts?: number[];
  portEnv?: string;
  /** The example's own modules besides its file (names without `.js`), which `apply` is given too: they are the server's code. */
  modules?: string[];
}

/** Every example that opens sessions over Streamable HTTP, with how it picks its port. */
export const SDK_SESSION_EXAMPLES: readonly SdkExample[] = [
  { name: 'elicitationFormExample', portEnv: 'PORT' },
  { name: 'elicitationUrlExample', portEnv: 'MCP_PORT', modules: ['demoInMemoryOAuthProvider'] },
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

/** The example's file, relative to the temporary project. */
export function exampleEntry(name: string): string {
  return `${SDK_EXAMPLES_DIR}/${name}.js`;
}

/** A temporary project with a real copy of the SDK package in its `node_modules` (see the module comment). */
export function copySdk(prefix: string): ServerCopy {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `mcp-migrate-${prefix}-`));
  const version = (JSON.parse(fs.readFileSync(path.join(SDK_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify({ name: 'sdk-example-server', private: true, type: 'module', dependencies: { '@modelcontextprotocol/sdk': version } }, null, 2)}\n`);
  const repoModules = path.join(REPO_ROOT, 'node_modules');
  const scope = path.join(dir, 'node_modules', '@modelcontextprotocol');
  fs.mkdirSync(scope, { recursive: true });
  for (const entry of fs.readdirSync(repoModules)) {
    if (!entry.startsWith('.') && entry !== '@modelcontextprotocol') fs.symlinkSync(path.join(repoModules, entry), path.join(dir, 'node_modules', entry));
  }
  for (const entry of fs.readdirSync(path.join(repoModules, '@modelcontextprotocol'))) {
    if (entry !== 'sdk') fs.symlinkSync(path.join(repoModules, '@modelcontextprotocol', entry), path.join(scope, entry));
  }
  for (const e of ['package.json', 'dist/esm']) fs.cpSync(path.join(SDK_ROOT, e), path.join(scope, 'sdk', e), { recursive: true });
  return { dir, remove: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** A temporary project (see {@link copySdk}) in which `apply --store redis` migrated one example file. */
export async function migrateSdkExample(name: string): Promise<ServerCopy & { applyOutput: string; applyExitCode: number }> {
  const copy = copySdk(`apply-${name}`);
  const run = await runApply(copy.dir, [exampleEntry(name), ...(sdkExample(name).modules ?? []).map(exampleEntry)]);
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
