/**
 * Bundled modules: where, inside one JavaScript file, the code of each original module starts and ends,
 * and which package (if any) it came from.
 *
 * The boundaries come from the bundle itself, never from a list of package names:
 * - path comments bundlers write before each module: esbuild's `// node_modules/express/lib/router.js`
 *   (and `// src/server.ts` for the application's own modules), webpack's `/*!*** ./node_modules/x/y.js ***!*\/`
 *   and `/***\/ "./node_modules/x/y.js":` module keys;
 * - otherwise the bundle's source map (`//# sourceMappingURL=` inline `data:` URI or a file beside the
 *   bundle), read with source-map-js: each generated line belongs to the original source of its first
 *   mapping.
 *
 * A module whose path goes through `node_modules/` belongs to the package named after its last
 * `node_modules/` segment (`@scope/name` or `name`); its version is known when the path carries it
 * (pnpm's `node_modules/.pnpm/<name>@<version>/…`).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import sourceMap from 'source-map-js';

/** The third-party package a finding's code came from. */
export interface Dependency {
  name: string;
  version?: string;
}

export interface BundleSegment {
  /** Character offsets in the bundle, `end` exclusive. */
  start: number;
  end: number;
  /** The original module's path as the bundle names it. */
  source: string;
  /** Absent for the application's own modules. */
  dependency?: Dependency;
}

const ESBUILD_PATH = /^\/\/ ((?:[\w@.+-]|\.\.?\/)[^\s]*\.(?:[cm]?[jt]sx?|json))$/gm;
const WEBPACK_PATH = /^\/\*!\*{3} (\.\/[^\s]+) \*{3}!\*\/$|^\/\*{3}\/ "(\.\/[^"]+)":/gm;
const SOURCE_MAP_URL = /\/\/# sourceMappingURL=(\S+)\s*$/;

/**
 * The modules of a bundle, in order, covering it from the first boundary to its end; `undefined` when the
 * file is not a bundle of third-party code (fewer than two modules, or none under `node_modules/`).
 */
export function bundleSegments(fileName: string, text: string): BundleSegment[] | undefined {
  if (!text.includes('node_modules')) return undefined;
  const fromComments = boundariesFromComments(text);
  const segments = fromComments.length >= 2 ? toSegments(fromComments, text.length) : fromSourceMap(fileName, text);
  if (!segments || segments.length < 2 || !segments.some((s) => s.dependency)) return undefined;
  return segments;
}

/** The segment holding `pos` (binary search), if any. */
export function segmentAt(segments: readonly BundleSegment[], pos: number): BundleSegment | undefined {
  let lo = 0;
  let hi = segments.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = segments[mid]!;
    if (pos < s.start) hi = mid - 1;
    else if (pos >= s.end) lo = mid + 1;
    else return s;
  }
  return undefined;
}

/** The package a module path belongs to: the last `node_modules/` segment, with the version pnpm's layout spells. */
export function dependencyOf(source: string): Dependency | undefined {
  const parts = source.replace(/\\/g, '/').split('/');
  const at = parts.lastIndexOf('node_modules');
  if (at < 0 || at + 1 >= parts.length) return undefined;
  const first = parts[at + 1]!;
  const name = first.startsWith('@') && parts[at + 2] ? `${first}/${parts[at + 2]}` : first;
  const pnpm = parts.indexOf('.pnpm');
  const store = pnpm >= 0 ? parts[pnpm + 1] : undefined;
  const prefix = `${name.replace('/', '+')}@`;
  const version = store?.startsWith(prefix) ? store.slice(prefix.length).split('_')[0] : undefined;
  return version ? { name, version } : { name };
}

function boundariesFromComments(text: string): Array<{ pos: number; source: string }> {
  const out: Array<{ pos: number; source: string }> = [];
  for (const re of [ESBUILD_PATH, WEBPACK_PATH]) {
    re.lastIndex = 0;
    for (let m = re.exec(text); m; m = re.exec(text)) out.push({ pos: m.index, source: (m[1] ?? m[2])! });
    if (out.length >= 2) break;
    out.length = 0;
  }
  return out;
}

function toSegments(boundaries: Array<{ pos: number; source: string }>, length: number): BundleSegment[] {
  return boundaries.map((b, i) => {
    const dependency = dependencyOf(b.source);
    return { start: b.pos, end: boundaries[i + 1]?.pos ?? length, source: b.source, ...(dependency ? { dependency } : {}) };
  });
}

/** Segments from the bundle's source map: runs of generated lines whose first mapping names the same source. */
function fromSourceMap(fileName: string, text: string): BundleSegment[] | undefined {
  const raw = readSourceMap(fileName, text);
  if (!raw) return undefined;
  let consumer: sourceMap.SourceMapConsumer;
  try {
    consumer = new sourceMap.SourceMapConsumer(JSON.parse(raw) as sourceMap.RawSourceMap);
  } catch {
    return undefined;
  }
  const lineSource = new Map<number, string>();
  consumer.eachMapping((m) => {
    if (m.source && !lineSource.has(m.generatedLine)) lineSource.set(m.generatedLine, m.source);
  });
  const lineStarts = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lineStarts.push(i + 1);
  const boundaries: Array<{ pos: number; source: string }> = [];
  for (const [line, source] of [...lineSource].sort((a, b) => a[0] - b[0])) {
    if (boundaries[boundaries.length - 1]?.source === source) continue;
    boundaries.push({ pos: lineStarts[line - 1] ?? text.length, source });
  }
  return boundaries.length >= 2 ? toSegments(boundaries, text.length) : undefined;
}

function readSourceMap(fileName: string, text: string): string | undefined {
  const tail = text.slice(Math.max(0, text.length - 4096 * 1024));
  const url = SOURCE_MAP_URL.exec(tail)?.[1];
  if (!url) return undefined;
  const inline = /^data:application\/json;(?:charset=[\w-]+;)?base64,(.*)$/.exec(url);
  if (inline) return Buffer.from(inline[1]!, 'base64').toString('utf8');
  if (/^[a-z]+:/i.test(url)) return undefined;
  const file = path.resolve(path.dirname(fileName), decodeURIComponent(url));
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}
