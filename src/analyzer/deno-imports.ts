/**
 * Deno servers: module specifiers mapped by a `deno.json` / `deno.jsonc` import map, resolved the way
 * Deno resolves them, so calls and types cross the server's modules as they do at run time.
 *
 * Deno reads the import map from its configuration file: the `imports` and `scopes` fields of the
 * nearest `deno.json` or `deno.jsonc` above a module, or the file its `importMap` field names
 * (`{ "imports": …, "scopes": … }`), and in a workspace also the root configuration's (a parent
 * configuration with a `workspace` field). Matching follows the WHATWG import-map algorithm: an exact
 * key first, then the longest key ending in `/` that prefixes the specifier, in the scopes whose
 * prefix contains the importing module (longest first) before the top-level `imports`. As Deno does
 * for its configuration file, a bare key mapped to an `npm:` or `jsr:` package also maps its subpaths
 * (`"@std/path": "jsr:@std/path@^1"` covers `@std/path/join`).
 *
 * Targets: a relative or absolute path resolves against the map file's folder; `npm:<name>@<range>/<sub>`
 * becomes the bare specifier `<name>/<sub>` (resolved from `node_modules` where present); `jsr:`,
 * `http(s):` and other URL targets are not resolved (their modules are not on disk).
 * Source: https://docs.deno.com/runtime/fundamentals/modules/ (import maps in `deno.json`),
 * https://html.spec.whatwg.org/multipage/webappapis.html#import-maps.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ts } from 'ts-morph';

type SpecifierMap = Map<string, string>;

interface ImportMap {
  /** Folder the map's relative targets (and scope prefixes) resolve against, absolute. */
  base: string;
  imports: SpecifierMap;
  /** Scope prefix (absolute path, ending in a separator, or a file) → its map. Longest first. */
  scopes: Array<[string, SpecifierMap]>;
}

interface DenoConfig {
  maps: ImportMap[];
  /** A workspace root: its maps apply to the members below it too. */
  isWorkspaceRoot: boolean;
}

const CONFIG_NAMES = ['deno.json', 'deno.jsonc'];

/** Reads JSON with comments and trailing commas (as `deno.jsonc` allows); `undefined` when unreadable. */
function readJsonc(file: string): Record<string, unknown> | undefined {
  const read = ts.readConfigFile(file, ts.sys.readFile);
  return read.error || typeof read.config !== 'object' || read.config === null ? undefined : (read.config as Record<string, unknown>);
}

function specifierMap(value: unknown): SpecifierMap {
  const map: SpecifierMap = new Map();
  if (!value || typeof value !== 'object') return map;
  for (const [key, target] of Object.entries(value as Record<string, unknown>)) {
    if (typeof target !== 'string') continue;
    map.set(key, target);
    // Deno's configuration file: a bare package key covers the package's subpaths too.
    if (!key.endsWith('/') && /^(npm|jsr):/.test(target) && !map.has(`${key}/`)) map.set(`${key}/`, `${target.replace(/\/$/, '')}/`);
  }
  return map;
}

function importMapOf(config: Record<string, unknown>, base: string): ImportMap {
  const scopes: Array<[string, SpecifierMap]> = [];
  if (config.scopes && typeof config.scopes === 'object') {
    for (const [prefix, value] of Object.entries(config.scopes as Record<string, unknown>)) {
      if (/^[./]/.test(prefix)) scopes.push([path.resolve(base, prefix) + (prefix.endsWith('/') ? path.sep : ''), specifierMap(value)]);
    }
  }
  scopes.sort((a, b) => b[0].length - a[0].length);
  return { base, imports: specifierMap(config.imports), scopes };
}

/** The import maps a Deno configuration file declares: its own `imports`/`scopes`, then its `importMap` file's. */
function readConfig(file: string): DenoConfig | undefined {
  const config = readJsonc(file);
  if (!config) return undefined;
  const dir = path.dirname(file);
  const maps = [importMapOf(config, dir)];
  if (typeof config.importMap === 'string' && /^[./]|^[^:]+$/.test(config.importMap)) {
    const mapFile = path.resolve(dir, config.importMap);
    const external = existsSync(mapFile) ? readJsonc(mapFile) : undefined;
    if (external) maps.push(importMapOf(external, path.dirname(mapFile)));
  }
  return { maps, isWorkspaceRoot: Array.isArray(config.workspace) || (typeof config.workspace === 'object' && config.workspace !== null) };
}

/** Applies one specifier map (exact key, then the longest `/`-ending prefix key); the raw target, or `undefined`. */
function applyMap(map: SpecifierMap, specifier: string): string | undefined {
  const exact = map.get(specifier);
  if (exact !== undefined) return exact;
  let best: string | undefined;
  for (const key of map.keys()) {
    if (key.endsWith('/') && specifier.startsWith(key) && (!best || key.length > best.length)) best = key;
  }
  return best === undefined ? undefined : map.get(best)! + specifier.slice(best.length);
}

/**
 * What a mapped target stands for on disk: an absolute path for a path target, the bare package
 * specifier for an `npm:` target, `undefined` for targets that name no local module.
 */
function targetSpecifier(target: string, base: string): string | undefined {
  if (/^(\.{1,2})?\//.test(target)) return path.resolve(base, target);
  if (target.startsWith('npm:')) return npmSpecifierToBare(target);
  if (target.startsWith('node:')) return target;
  if (target.startsWith('file://')) return decodeURIComponent(new URL(target).pathname);
  return undefined;
}

/** `npm:@scope/name@^1.2/sub` → `@scope/name/sub`, `npm:/name@1` → `name`; any other specifier unchanged. */
export function npmSpecifierToBare(specifier: string): string {
  if (!specifier.startsWith('npm:')) return specifier;
  const rest = specifier.slice(4).replace(/^\//, '');
  const m = /^(@[^/]+\/[^/@]+|[^/@]+)(?:@[^/]*)?(\/.*)?$/.exec(rest);
  return m ? `${m[1]}${m[2] ?? ''}` : rest;
}

/**
 * A resolver of import-mapped specifiers for the modules under `root`: `(specifier, importingFile)` →
 * the specifier to resolve instead (an absolute path or a bare package specifier), or `undefined`
 * when no Deno import map maps it. Configurations are read once per folder.
 */
export function denoImportMaps(): (specifier: string, containingFile: string) => string | undefined {
  const byDir = new Map<string, DenoConfig[]>();
  const configsFor = (dir: string): DenoConfig[] => {
    const cached = byDir.get(dir);
    if (cached) return cached;
    const file = CONFIG_NAMES.map((n) => path.join(dir, n)).find((f) => existsSync(f));
    const own = file ? readConfig(file) : undefined;
    const parent = path.dirname(dir);
    const above = parent === dir ? [] : configsFor(parent);
    // The nearest configuration applies; configurations above it only as workspace roots.
    const found = own ? [own, ...above.filter((c) => c.isWorkspaceRoot)] : above;
    byDir.set(dir, found);
    return found;
  };
  return (specifier, containingFile) => {
    if (specifier.startsWith('npm:')) return npmSpecifierToBare(specifier);
    if (/^(\.{1,2})?\//.test(specifier) || /^[a-z]+:/i.test(specifier)) return undefined;
    for (const config of configsFor(path.dirname(path.resolve(containingFile)))) {
      for (const map of config.maps) {
        const file = path.resolve(containingFile);
        for (const [prefix, scoped] of map.scopes) {
          if (!(file === prefix || file.startsWith(prefix))) continue;
          const target = applyMap(scoped, specifier);
          if (target !== undefined) return targetSpecifier(target, map.base);
        }
        const target = applyMap(map.imports, specifier);
        if (target !== undefined) return targetSpecifier(target, map.base);
      }
    }
    return undefined;
  };
}
