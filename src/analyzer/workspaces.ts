/**
 * Monorepos: the TypeScript projects nested under the analyzed root, and the workspace packages they
 * import from each other by name.
 *
 * - A root `tsconfig.json` often covers only the repository's top-level files (tooling configs) while
 *   each package (`packages/<name>/tsconfig.json`) is its own project. {@link nestedProjectFiles}
 *   returns the source files of those nested projects, so `analyze .` sees every package.
 * - Packages import each other by package name (`import { SessionStore } from '@acme/core'`), which
 *   resolves through `node_modules` symlinks that a checkout without `npm install` does not have, and
 *   to build output (`dist/index.d.ts`) that does not exist before a build. {@link workspaceFallback}
 *   resolves such a specifier to the package's own source, the way TypeScript project references map
 *   an output file back to its input: `outDir` → `rootDir`, `.d.ts`/`.js` → `.ts`.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ts } from 'ts-morph';

const SKIPPED_DIRS = new Set(['node_modules', '.git', 'coverage', '.next', '.turbo', '.cache', 'dist', 'build', 'out', 'lib']);
/** How deep below the root nested projects and packages are looked for (`packages/scope/name` is 3). */
const MAX_DEPTH = 4;

interface WorkspacePackage {
  name: string;
  dir: string;
  /** `package.json` `exports`, `types`, `main`, `source`: candidate entry points by subpath (`.`, `./server`). */
  entries: Map<string, string[]>;
  /** `outDir` → `rootDir` pairs of the package's tsconfigs, absolute. */
  outToRoot: Array<[string, string]>;
}

/** Directories under `root` (depth-limited, build output and `node_modules` skipped) holding `file`. */
function dirsWith(root: string, file: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    if (depth > 0 && entries.some((e) => e.isFile() && e.name === file)) out.push(dir);
    if (depth >= MAX_DEPTH) return;
    for (const e of entries) if (e.isDirectory() && !SKIPPED_DIRS.has(e.name) && !e.name.startsWith('.')) walk(path.join(dir, e.name), depth + 1);
  };
  walk(root, 0);
  return out;
}

/**
 * Source files of the `tsconfig.json` projects nested under `root` (not the root's own), absolute.
 * A tsconfig that cannot be read is skipped: its files are then simply not added.
 */
export function nestedProjectFiles(root: string): string[] {
  const out: string[] = [];
  for (const dir of dirsWith(root, 'tsconfig.json')) {
    const file = path.join(dir, 'tsconfig.json');
    const read = ts.readConfigFile(file, ts.sys.readFile);
    if (read.error) continue;
    try {
      out.push(...ts.parseJsonConfigFileContent(read.config, ts.sys, dir).fileNames.map((f) => path.resolve(f)));
    } catch {
      /* unreadable project: skipped */
    }
  }
  return out;
}

function entryStrings(value: unknown, into: string[]): void {
  if (typeof value === 'string') into.push(value);
  else if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    // Source-first conditions, then type declarations, then runtime entries.
    for (const key of ['source', 'types', 'typings', 'import', 'require', 'node', 'default']) if (key in o) entryStrings(o[key], into);
  }
}

function readPackage(dir: string): WorkspacePackage | undefined {
  let pkg: Record<string, unknown>;
  try {
    pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof pkg.name !== 'string' || pkg.name.length === 0) return undefined;
  const entries = new Map<string, string[]>();
  const add = (subpath: string, value: unknown): void => {
    const list = entries.get(subpath) ?? [];
    entryStrings(value, list);
    entries.set(subpath, list);
  };
  const exp = pkg.exports;
  if (typeof exp === 'string') add('.', exp);
  else if (exp && typeof exp === 'object') {
    const keys = Object.keys(exp);
    if (keys.every((k) => k.startsWith('.'))) for (const k of keys) add(k, (exp as Record<string, unknown>)[k]);
    else add('.', exp);
  }
  for (const key of ['source', 'types', 'typings', 'module', 'main']) if (typeof pkg[key] === 'string') add('.', pkg[key]);
  const outToRoot: Array<[string, string]> = [];
  for (const name of readdirSync(dir).filter((f) => /^tsconfig.*\.json$/.test(f))) {
    const read = ts.readConfigFile(path.join(dir, name), ts.sys.readFile);
    if (read.error) continue;
    try {
      const options = ts.parseJsonConfigFileContent(read.config, ts.sys, dir).options;
      if (options.outDir) outToRoot.push([path.resolve(dir, options.outDir), path.resolve(dir, options.rootDir ?? '.')]);
    } catch {
      /* unreadable tsconfig */
    }
  }
  return { name: pkg.name, dir, entries, outToRoot };
}

const SOURCE_EXTENSIONS = ['.ts', '.tsx', '.mts', '.cts', '.js', '.mjs', '.jsx', '.cjs'];

/** The source file an entry point (maybe build output) stands for, if it exists. */
function sourceOf(pkg: WorkspacePackage, entry: string): string | undefined {
  const abs = path.resolve(pkg.dir, entry);
  const stem = abs.replace(/(\.d)?\.[cm]?[jt]sx?$/, '');
  const stems = [stem];
  for (const [out, rootDir] of pkg.outToRoot) if (stem.startsWith(out + path.sep)) stems.push(rootDir + stem.slice(out.length));
  // Conventional layout when no tsconfig says it: dist/, lib/, build/ beside src/.
  stems.push(stem.replace(/([\\/])(dist|lib|build|out)([\\/])/, '$1src$3'));
  for (const s of stems) {
    for (const ext of SOURCE_EXTENSIONS) if (existsSync(s + ext)) return s + ext;
    for (const ext of SOURCE_EXTENSIONS) if (existsSync(path.join(s, 'index' + ext))) return path.join(s, 'index' + ext);
  }
  return undefined;
}

/** Resolves `spec` (a package name, maybe with a subpath) to a workspace package's source file. */
function resolveIn(packages: Map<string, WorkspacePackage>, spec: string): string | undefined {
  const parts = spec.split('/');
  const nameLength = spec.startsWith('@') ? 2 : 1;
  const pkg = packages.get(parts.slice(0, nameLength).join('/'));
  if (!pkg) return undefined;
  const rest = parts.slice(nameLength).join('/');
  const subpath = rest ? `./${rest}` : '.';
  for (const entry of pkg.entries.get(subpath) ?? []) {
    const found = sourceOf(pkg, entry);
    if (found) return found;
  }
  return sourceOf(pkg, rest ? path.join('src', rest) : path.join('src', 'index')) ?? (rest ? sourceOf(pkg, rest) : sourceOf(pkg, 'index'));
}

/**
 * A fallback for specifiers the compiler cannot resolve (see compiler-host.ts `moduleResolver`): a
 * package name of a workspace package under `root` → that package's source file. `undefined` when
 * there are no packages.
 */
export function workspaceFallback(root: string): ((name: string) => string | undefined) | undefined {
  const packages = new Map<string, WorkspacePackage>();
  for (const dir of dirsWith(root, 'package.json')) {
    const pkg = readPackage(dir);
    if (pkg && !packages.has(pkg.name)) packages.set(pkg.name, pkg);
  }
  if (packages.size === 0) return undefined;
  return (name) => {
    const file = !name.startsWith('.') && !path.isAbsolute(name) ? resolveIn(packages, name) : undefined;
    return file && statSync(file).isFile() ? file : undefined;
  };
}
