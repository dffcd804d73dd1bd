/**
 * Loads the analyzed program (TypeScript's compiler API through ts-morph's bundled copy; see
 * compiler-host.ts for the host).
 *
 * - A path that is (or contains, at its top) a `tsconfig.json` is loaded through it, so path
 *   aliases and project references resolve as the server's own build sees them; JavaScript files
 *   under the same paths are added as well when the tsconfig leaves them out, and so are files it
 *   leaves out that import its files by a relative path (examples and scripts that run the server).
 * - Deno import maps (`deno.json`) resolve module specifiers as Deno does (deno-imports.ts).
 * - Otherwise every `.ts/.tsx/.mts/.cts/.js/.jsx/.mjs/.cjs` file under the paths is added, with
 *   `allowJs` so types flow from `node_modules` declarations into JavaScript callbacks.
 * - `node_modules` is skipped unless a path points inside it; declaration files (`.d.ts`), test
 *   files (`*.test.*`, `*.spec.*`, `__tests__/`) and build output beside sources are not analyzed.
 * - A file with syntax errors is skipped with a warning; the rest is analyzed.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { ts } from 'ts-morph';
import { analyzerHost, moduleResolver } from './compiler-host.js';
import { denoImportMaps } from './deno-imports.js';
import { UsageError, type AnalysisWarning } from './types.js';
import { nestedProjectFiles, workspaceFallback } from './workspaces.js';

const SOURCE_EXTENSIONS = new Set(['.ts', '.tsx', '.mts', '.cts', '.js', '.jsx', '.mjs', '.cjs']);
const SKIPPED_DIRS = new Set(['node_modules', '.git', 'coverage', '.next', '.turbo', '.cache']);
const TEST_FILE = /(^|[\\/])(__tests__|__mocks__)[\\/]|\.(test|spec)\.[cm]?[jt]sx?$/;

export interface LoadedProject {
  root: string;
  program: ts.Program;
  checker: ts.TypeChecker;
  /** The files to analyze (parsed without syntax errors), sorted by path. */
  files: ts.SourceFile[];
  warnings: AnalysisWarning[];
}

const COMPILER_OPTIONS: ts.CompilerOptions = {
  allowJs: true,
  checkJs: false,
  noEmit: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  jsx: ts.JsxEmit.Preserve,
  skipLibCheck: true,
  strict: false,
  types: [],
  lib: ['lib.es2023.d.ts'],
};

/** Resolves the paths, checks they exist, and returns the absolute root (their common directory). */
export function resolveRoot(paths: string[], cwd: string): { root: string; absolute: string[] } {
  const absolute = (paths.length > 0 ? paths : ['.']).map((p) => path.resolve(cwd, p));
  for (const p of absolute) {
    if (!existsSync(p)) throw new UsageError(`path not found: ${path.relative(cwd, p) || p}`);
  }
  const dirs = absolute.map((p) => (statSync(p).isDirectory() ? p : path.dirname(p)));
  let root = dirs[0]!;
  for (const d of dirs.slice(1)) {
    while (!(d === root || d.startsWith(root + path.sep))) root = path.dirname(root);
  }
  return { root, absolute };
}

/** Lists source files under a path, skipping `node_modules` unless the path itself is inside it. */
export function listSourceFiles(target: string): string[] {
  const insideNodeModules = target.split(path.sep).includes('node_modules');
  if (statSync(target).isFile()) return isAnalyzable(target) ? [target] : [];
  const out: string[] = [];
  const walk = (dir: string): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (SKIPPED_DIRS.has(entry.name) && !(insideNodeModules && entry.name !== 'node_modules')) continue;
        walk(full);
      } else if (entry.isFile() && isAnalyzable(full)) out.push(full);
    }
  };
  walk(target);
  return out;
}

function isAnalyzable(file: string): boolean {
  if (/\.d\.[cm]?ts$/.test(file)) return false;
  if (TEST_FILE.test(file)) return false;
  return SOURCE_EXTENSIONS.has(path.extname(file));
}

function findTsconfig(absolute: string[]): string | undefined {
  if (absolute.length !== 1) return undefined;
  const only = absolute[0]!;
  if (only.endsWith('.json') && existsSync(only)) return only;
  const candidate = path.join(only, 'tsconfig.json');
  return existsSync(candidate) && statSync(only).isDirectory() ? candidate : undefined;
}

/**
 * The options and files of a tsconfig, as `tsc -p` reads them.
 * @throws Error when the file is not valid JSON (the caller falls back to the files under the path).
 */
function parseTsconfig(tsconfig: string): ts.ParsedCommandLine {
  const read = ts.readConfigFile(tsconfig, ts.sys.readFile);
  if (read.error) throw new Error(ts.flattenDiagnosticMessageText(read.error.messageText, ' '));
  return ts.parseJsonConfigFileContent(read.config, ts.sys, path.dirname(tsconfig), undefined, tsconfig);
}

/** Source files of the projects a tsconfig references (TypeScript project references), recursively. */
function referencedFiles(tsconfig: string, seen: Set<string>): string[] {
  if (seen.has(tsconfig)) return [];
  seen.add(tsconfig);
  const read = ts.readConfigFile(tsconfig, ts.sys.readFile);
  const refs = (read.config as { references?: Array<{ path?: string }> } | undefined)?.references ?? [];
  const out: string[] = [];
  for (const ref of refs) {
    if (!ref.path) continue;
    let target = path.resolve(path.dirname(tsconfig), ref.path);
    if (existsSync(target) && statSync(target).isDirectory()) target = path.join(target, 'tsconfig.json');
    if (!existsSync(target)) continue;
    const config = ts.readConfigFile(target, ts.sys.readFile);
    if (config.error) continue;
    const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, path.dirname(target));
    out.push(...parsed.fileNames.map((f) => path.resolve(f)), ...referencedFiles(target, seen));
  }
  return out;
}

const RELATIVE_IMPORT = /(?:\bfrom|\bimport|\brequire)\s*\(?\s*['"](\.{1,2}\/[^'"]*)['"]/g;

/**
 * Source files under `dir` outside `wanted` that import one of `wanted` by a relative path (examples and
 * scripts a tsconfig's `include` leaves out but that build the project's server). Read as text: no program.
 */
function entriesOutside(dir: string, wanted: ReadonlySet<string>): string[] {
  const stems = new Set<string>();
  for (const f of wanted) {
    const stem = f.replace(/\.[cm]?[jt]sx?$/, '');
    stems.add(stem);
    if (path.basename(stem) === 'index') stems.add(path.dirname(stem));
  }
  return listSourceFiles(dir).filter((f) => {
    if (wanted.has(f)) return false;
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      return false;
    }
    for (const m of text.matchAll(RELATIVE_IMPORT)) {
      if (stems.has(path.resolve(path.dirname(f), m[1]!).replace(/\.[cm]?[jt]sx?$/, '').replace(/[\\/]$/, ''))) return true;
    }
    return false;
  });
}

/**
 * Loads the program for `paths` (with `texts`, where given, in place of the files' contents on disk).
 * @throws UsageError when a path does not exist or no source file is found.
 */
export function loadProject(paths: string[], cwd: string, fileFilter?: (absolutePath: string) => boolean, texts?: ReadonlyMap<string, string>): LoadedProject {
  const { root, absolute } = resolveRoot(paths, cwd);
  const warnings: AnalysisWarning[] = [];
  const tsconfig = findTsconfig(absolute);
  let options = COMPILER_OPTIONS;
  let configFiles: string[] = [];
  const wanted = new Set<string>();
  if (tsconfig) {
    try {
      const parsed = parseTsconfig(tsconfig);
      options = { ...parsed.options, allowJs: true, noEmit: true };
      configFiles = parsed.fileNames.map((f) => path.resolve(f));
      for (const f of configFiles) if (isAnalyzable(f) && !f.split(path.sep).includes('node_modules')) wanted.add(f);
      // A solution-style tsconfig (`references` to the packages of a monorepo) stands for its projects.
      for (const f of referencedFiles(tsconfig, new Set())) if (isAnalyzable(f) && !f.split(path.sep).includes('node_modules')) wanted.add(f);
      // A monorepo whose root tsconfig covers only its own top-level files: each package's project counts.
      for (const f of nestedProjectFiles(path.dirname(tsconfig))) if (isAnalyzable(f) && !f.split(path.sep).includes('node_modules')) wanted.add(f);
    } catch (error) {
      warnings.push({ file: rel(root, tsconfig), message: `tsconfig could not be read (${(error as Error).message}); analyzing the files under the path instead` });
    }
    // Sources the tsconfig leaves out (plain JavaScript beside it) are still analyzed.
    if (wanted.size === 0) for (const f of listSourceFiles(path.dirname(tsconfig))) wanted.add(f);
    // So are the entry points it leaves out that run the project's code (`examples/server.ts` importing `../src`).
    else for (const f of entriesOutside(path.dirname(tsconfig), wanted)) wanted.add(f);
  } else {
    for (const p of absolute) for (const f of listSourceFiles(p)) wanted.add(f);
  }
  const sorted = [...wanted].filter((f) => !fileFilter || fileFilter(f)).sort();
  if (sorted.length === 0) {
    throw new UsageError(`no source files (${[...SOURCE_EXTENSIONS].join(' ')}) found under ${absolute.map((p) => path.relative(cwd, p) || '.').join(', ')}`);
  }
  // Deno import maps (deno-imports.ts), then workspace packages imported by name resolve to their sources (workspaces.ts).
  const host = analyzerHost(options, texts, moduleResolver(root, { remap: denoImportMaps(), fallback: workspaceFallback(root) }));
  const program = ts.createProgram({ rootNames: [...new Set([...configFiles, ...sorted])], options, host });
  const checker = program.getTypeChecker();
  const files: ts.SourceFile[] = [];
  for (const f of sorted) {
    const sf = program.getSourceFile(f) ?? program.getSourceFile(f.split(path.sep).join('/'));
    if (!sf) {
      warnings.push({ file: rel(root, f), message: 'not part of the program; skipped' });
      continue;
    }
    const parseErrors = (sf as unknown as { parseDiagnostics?: ts.Diagnostic[] }).parseDiagnostics ?? [];
    if (parseErrors.length > 0) {
      const first = parseErrors[0]!;
      const where = first.start !== undefined ? sf.getLineAndCharacterOfPosition(first.start) : undefined;
      warnings.push({
        file: rel(root, f),
        message: `does not parse (${where ? `line ${where.line + 1}: ` : ''}${ts.flattenDiagnosticMessageText(first.messageText, ' ')}); skipped`,
      });
      continue;
    }
    files.push(sf);
  }
  return { root, program, checker, files, warnings };
}

export function rel(root: string, file: string): string {
  return path.relative(root, file).split(path.sep).join('/');
}
