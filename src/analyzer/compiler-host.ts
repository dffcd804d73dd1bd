/**
 * The compiler host the analyzer builds its program with: TypeScript's own host
 * (`ts.createCompilerHost`, as `tsc` uses) with three changes.
 *
 * - Lib files (`lib.es2023.d.ts`…) come from the copies bundled with ts-morph (`@ts-morph/common`
 *   `getLibFiles()`), under the same virtual folder ts-morph uses, so the analyzer needs no TypeScript
 *   installation of its own.
 * - Texts given by the caller (apply's rewritten code) are read in place of the files on disk.
 * - Parsed declaration files that cannot change during a run (lib files, and `.d.ts` files under
 *   `node_modules`) are shared by every program this process builds, as TypeScript's language
 *   service shares them through its document registry. A declaration file is parsed and bound once
 *   per process, not once per analysis: `apply` analyzes up to three times, and a test process
 *   analyzes hundreds of fixtures against the same SDK declarations. An entry is reused only while the
 *   file's size and modification time are unchanged.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { getLibFiles, libFolderInMemoryPath } from '@ts-morph/common';
import { ts } from 'ts-morph';

/** A module resolver for the host (see {@link moduleResolver}). */
export type ResolverFactory = (host: ts.ModuleResolutionHost, options: () => ts.CompilerOptions) => Pick<ts.CompilerHost, 'resolveModuleNames'>;

/** Resolution beyond the compiler's own (see {@link moduleResolver}). */
export interface ResolverSteps {
  /** Tried first: the specifier to resolve instead (an import map's target), or `undefined` to keep it. */
  remap?: (name: string, containingFile: string) => string | undefined;
  /** Tried last, for a specifier the compiler cannot resolve: a source file, or `undefined`. */
  fallback?: (name: string) => string | undefined;
}

interface SharedFile {
  stamp: string;
  sourceFile: ts.SourceFile;
}

/** Shared parsed declaration files, by file name, target and module format. Bounded: cleared when full. */
const shared = new Map<string, SharedFile>();
const MAX_SHARED = 20_000;
let libTexts: Map<string, string> | undefined;

function libText(fileName: string): string | undefined {
  if (path.posix.dirname(fileName) !== libFolderInMemoryPath) return undefined;
  libTexts ??= new Map(getLibFiles().map((f) => [f.fileName, f.text]));
  return libTexts.get(path.posix.basename(fileName));
}

/** Size and modification time of a declaration file that may be shared, `undefined` for any other file. */
function shareStamp(fileName: string): string | undefined {
  if (libText(fileName) !== undefined) return 'lib';
  if (!/\.d\.[cm]?ts$/.test(fileName) || !fileName.split(/[\\/]/).includes('node_modules')) return undefined;
  try {
    const stat = statSync(fileName);
    return `${stat.size}:${stat.mtimeMs}`;
  } catch {
    return undefined;
  }
}

/**
 * A compiler host for `options` whose source texts come from `texts` (absolute path → text) where
 * given, and otherwise from disk and the bundled lib files.
 */
export function analyzerHost(options: ts.CompilerOptions, texts?: ReadonlyMap<string, string>, resolver?: ResolverFactory): ts.CompilerHost {
  const host = ts.createCompilerHost(options, true);
  const readFile = (fileName: string): string | undefined => texts?.get(path.resolve(fileName)) ?? libText(fileName) ?? ts.sys.readFile(fileName);
  host.readFile = readFile;
  host.fileExists = (fileName) => texts?.has(path.resolve(fileName)) || libText(fileName) !== undefined || ts.sys.fileExists(fileName);
  host.directoryExists = (dir) => dir === libFolderInMemoryPath || ts.sys.directoryExists(dir);
  host.getDefaultLibLocation = () => libFolderInMemoryPath;
  host.getDefaultLibFileName = (o) => `${libFolderInMemoryPath}/${ts.getDefaultLibFileName(o)}`;
  host.getSourceFile = (fileName, languageVersion, onError) => {
    const format = typeof languageVersion === 'object' ? `${languageVersion.languageVersion}:${languageVersion.impliedNodeFormat}` : String(languageVersion);
    const stamp = texts?.has(path.resolve(fileName)) ? undefined : shareStamp(fileName);
    const key = `${fileName}\0${format}`;
    const cached = stamp === undefined ? undefined : shared.get(key);
    if (cached && cached.stamp === stamp) return cached.sourceFile;
    const text = readFile(fileName);
    if (text === undefined) {
      onError?.(`file not found: ${fileName}`);
      return undefined;
    }
    const sourceFile = ts.createSourceFile(fileName, text, languageVersion, true);
    if (stamp !== undefined) {
      if (shared.size >= MAX_SHARED) shared.clear();
      shared.set(key, { stamp, sourceFile });
    }
    return sourceFile;
  };
  if (resolver) host.resolveModuleNames = resolver(host, () => options).resolveModuleNames;
  return host;
}

/**
 * Resolves like the compiler, with `steps`: a specifier `remap` maps (a Deno import map, see
 * deno-imports.ts) is resolved as its target when that target resolves; one the compiler cannot resolve
 * goes to `fallback` (workspace packages, see workspaces.ts). `undefined` when there is no step.
 */
export function moduleResolver(root: string, steps: ResolverSteps): ResolverFactory | undefined {
  const { remap, fallback } = steps;
  if (!remap && !fallback) return undefined;
  return (host, options) => {
    const cache = ts.createModuleResolutionCache(root, (f) => f, options());
    const resolve = (name: string, file: string) => ts.resolveModuleName(name, file, options(), host, cache).resolvedModule;
    return {
      resolveModuleNames: (names, containingFile) =>
        names.map((name) => {
          const mapped = remap?.(name, containingFile);
          const target = mapped !== undefined && mapped !== name ? resolve(mapped, containingFile) : undefined;
          // The checker asserts that a module resolved "using a TS extension" is named with one; the written specifier decides.
          const viaMap = target && { ...target, resolvedUsingTsExtension: !!target.resolvedUsingTsExtension && /\.[cm]?tsx?$/.test(name) };
          const resolved = viaMap ?? resolve(name, containingFile);
          if (resolved) return resolved;
          const file = fallback?.(name);
          return file ? { resolvedFileName: file, extension: extensionOf(file), isExternalLibraryImport: false } : undefined;
        }),
    };
  };
}

const EXTENSIONS: Record<string, ts.Extension> = {
  '.tsx': ts.Extension.Tsx,
  '.mts': ts.Extension.Mts,
  '.cts': ts.Extension.Cts,
  '.js': ts.Extension.Js,
  '.jsx': ts.Extension.Jsx,
  '.mjs': ts.Extension.Mjs,
  '.cjs': ts.Extension.Cjs,
};

function extensionOf(file: string): ts.Extension {
  return EXTENSIONS[path.extname(file)] ?? ts.Extension.Ts;
}
