/**
 * The server's package.json after `apply`: `@mcp-migrate/runtime` is added to `dependencies` only when
 * the rewritten code imports it. Nothing else is added: the runtime brings its own `ioredis`, and the
 * CLI (`mcp-migrate`, with TypeScript and ts-morph) is a tool, not a dependency of the migrated server.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { RUNTIME_MODULE } from './todo.js';

/** An import of the runtime in JavaScript or TypeScript text: `from '…'`, `import('…')`, `require('…')`. */
const IMPORTS_RUNTIME = new RegExp(`(?:\\bfrom\\s*|\\bimport\\s*\\(\\s*|\\brequire\\s*\\(\\s*)(['"])${RUNTIME_MODULE.replace('/', '\\/')}\\1`);

/** Whether a text imports `@mcp-migrate/runtime` (a mention in a comment does not count). */
export function importsRuntime(text: string): boolean {
  return IMPORTS_RUNTIME.test(text.replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, ''));
}

/**
 * The change to the nearest package.json at or above `root` (not above a git repository's top, and not one
 * inside `node_modules`), or
 * `undefined` when no changed file imports the runtime, it is already a dependency, or there is none.
 */
export function packageJsonChange(root: string, changes: readonly { after: string }[]): { file: string; absolute: string; before: string; after: string } | undefined {
  if (!changes.some((c) => importsRuntime(c.after))) return undefined;
  for (let dir = root; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'package.json');
    // An installed package's manifest (code analyzed inside node_modules) is not the server's.
    if (existsSync(candidate) && !dir.split(path.sep).includes('node_modules')) {
      const before = readFileSync(candidate, 'utf8');
      let pkg: { dependencies?: Record<string, string> };
      try {
        pkg = JSON.parse(before) as typeof pkg;
      } catch {
        return undefined;
      }
      const deps = { ...(pkg.dependencies ?? {}) };
      if (deps[RUNTIME_MODULE]) return undefined;
      deps[RUNTIME_MODULE] = `^${runtimeVersion()}`;
      pkg.dependencies = Object.fromEntries(Object.entries(deps).sort(([a], [b]) => a.localeCompare(b)));
      const indent = /\n([ \t]+)"/.exec(before)?.[1] ?? '  ';
      const after = JSON.stringify(pkg, null, indent) + (before.endsWith('\n') ? '\n' : '');
      return { file: path.relative(root, candidate).split(path.sep).join('/'), absolute: candidate, before, after };
    }
    if (path.dirname(dir) === dir || existsSync(path.join(dir, '.git'))) return undefined;
  }
}

/** The version of the runtime package this CLI runs with (`@mcp-migrate/runtime`, a dependency of the CLI). */
function runtimeVersion(): string {
  const pkg = createRequire(import.meta.url)(`${RUNTIME_MODULE}/package.json`) as { version: string };
  return pkg.version;
}
