/**
 * The gate's configuration: `mcp-migrate.config.json`, or the `"mcp-migrate"` key of `package.json`,
 * found from the analyzed root upward (stopping at the git root, the directory holding `.git`, or at
 * the filesystem root), or named with `--config FILE`. Validated against the shipped JSON schema
 * (`schema/config.schema.json`) with Ajv; every problem is reported at once, with "did you mean"
 * suggestions, as a {@link UsageError} (exit code 2).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import picomatch from 'picomatch';
import { UsageError, type Severity } from '../analyzer/types.js';
import { suggestion } from './did-you-mean.js';

/** The configuration file name looked for in each directory. */
export const CONFIG_FILE = 'mcp-migrate.config.json';
/** The key of `package.json` that may hold the configuration instead. */
export const PACKAGE_JSON_KEY = 'mcp-migrate';

export type RuleSetting = Severity | 'off';
export type FailOnSetting = Severity | 'none';
export type UnusedSuppressions = 'error' | 'warning' | 'off';

/** The configuration as written (after validation). */
export interface GateConfig {
  $schema?: string;
  rules?: Record<string, RuleSetting>;
  include?: string[];
  exclude?: string[];
  failOn?: FailOnSetting;
  reportUnusedSuppressions?: UnusedSuppressions;
}

export interface LoadedConfig {
  config: GateConfig;
  /** Absolute path of the file the configuration came from; undefined when none was found. */
  file?: string;
  /** Directory `include`/`exclude` globs are relative to: the configuration file's directory. */
  dir?: string;
}

const require = createRequire(import.meta.url);

/** The JSON schema of the configuration, read from `schema/config.schema.json` of this package. */
export const configSchema: Record<string, unknown> = loadSchema();

function loadSchema(): Record<string, unknown> {
  // `src/gate/` under vitest and tsx, `dist/src/gate/` when built.
  for (const rel of ['../../schema/config.schema.json', '../../../schema/config.schema.json']) {
    try {
      return require(rel) as Record<string, unknown>;
    } catch {
      /* try the next location */
    }
  }
  throw new Error('schema/config.schema.json is missing from the mcp-migrate package');
}

// verbose: errors carry the offending value, for "did you mean".
const ajv = new Ajv({ allErrors: true, strict: true, verbose: true });
const validateConfig = ajv.compile<GateConfig>(configSchema);

/** Every rule id the schema knows (the rule registry, checked by test/gate/config.test.ts). */
const schemaProperties = configSchema.properties as Record<string, { properties?: Record<string, unknown>; enum?: string[] }>;
const RULE_IDS = Object.keys(schemaProperties.rules?.properties ?? {});
const TOP_LEVEL_KEYS = Object.keys(schemaProperties);

/**
 * Finds and loads the configuration for an analysis rooted at `root`: `explicit` when given (relative
 * to `cwd`), else the nearest `mcp-migrate.config.json` or `package.json` with a `"mcp-migrate"` key.
 * @throws UsageError for an unreadable, unparsable or invalid configuration.
 */
export function loadConfig(root: string, options: { explicit?: string; cwd: string }): LoadedConfig {
  if (options.explicit !== undefined) {
    const file = path.resolve(options.cwd, options.explicit);
    if (!existsSync(file)) throw new UsageError(`configuration file not found: ${options.explicit}`);
    const raw = readJson(file, options.explicit);
    const value = path.basename(file) === 'package.json' ? (raw as Record<string, unknown> | null)?.[PACKAGE_JSON_KEY] : raw;
    if (value === undefined) throw new UsageError(`${options.explicit}: has no "${PACKAGE_JSON_KEY}" key`);
    return { config: validate(value, options.explicit), file, dir: path.dirname(file) };
  }
  const found = findConfigFile(root);
  if (!found) return { config: {} };
  const label = path.relative(options.cwd, found.file) || found.file;
  const raw = readJson(found.file, label);
  const value = found.key ? (raw as Record<string, unknown>)[found.key] : raw;
  return { config: validate(value, found.key ? `${label} ("${found.key}")` : label), file: found.file, dir: path.dirname(found.file) };
}

/** The nearest configuration at or above `start`, up to the git root or the filesystem root. */
export function findConfigFile(start: string): { file: string; key?: string } | undefined {
  let dir = path.resolve(start);
  for (;;) {
    const config = path.join(dir, CONFIG_FILE);
    if (isFile(config)) return { file: config };
    const pkg = path.join(dir, 'package.json');
    if (isFile(pkg)) {
      try {
        const json = JSON.parse(readFileSync(pkg, 'utf8')) as unknown;
        if (json && typeof json === 'object' && PACKAGE_JSON_KEY in json) return { file: pkg, key: PACKAGE_JSON_KEY };
      } catch {
        /* a broken package.json is not ours to report */
      }
    }
    const parent = path.dirname(dir);
    if (existsSync(path.join(dir, '.git')) || parent === dir) return undefined;
    dir = parent;
  }
}

/**
 * Validates a configuration value against the schema.
 * @param label names the source in messages (a file name).
 * @throws UsageError listing every problem.
 */
export function validate(value: unknown, label: string): GateConfig {
  if (validateConfig(value)) return value;
  const problems = (validateConfig.errors ?? []).map(describeError);
  throw new UsageError(`invalid configuration in ${label}:\n${[...new Set(problems)].map((p) => `  - ${p}`).join('\n')}`);
}

function describeError(error: ErrorObject): string {
  const where = pointerToPath(error.instancePath);
  const at = where === '' ? '' : `${where}: `;
  switch (error.keyword) {
    case 'additionalProperties': {
      const key = (error.params as { additionalProperty: string }).additionalProperty;
      if (where === 'rules') return `rules: unknown rule id "${key}"${suggestion(key, RULE_IDS)}`;
      return `${at}unknown option "${key}"${suggestion(key, where === '' ? TOP_LEVEL_KEYS : [])}`;
    }
    case 'enum': {
      const allowed = (error.params as { allowedValues: unknown[] }).allowedValues.map(String);
      const got = valueAt(error);
      const hint = typeof got === 'string' ? suggestion(got, allowed) : '';
      return `${at}${JSON.stringify(got)} is not one of ${allowed.join(', ')}${hint}`;
    }
    case 'type':
      return `${at}must be ${(error.params as { type: string }).type}, not ${describeType(valueAt(error))}`;
    default:
      return `${at}${error.message ?? error.keyword}`;
  }
}

/** The offending value (kept by Ajv's `verbose` mode). */
function valueAt(error: ErrorObject): unknown {
  return (error as ErrorObject & { data?: unknown }).data;
}

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/** `/rules/no-x` → `rules.no-x`, `/include/0` → `include[0]`. */
function pointerToPath(pointer: string): string {
  if (pointer === '') return '';
  return pointer
    .slice(1)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`))
    .join('');
}

function readJson(file: string, label: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read the configuration ${label}: ${(err as Error).message}`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new UsageError(`${label} is not valid JSON: ${(err as Error).message}`);
  }
}

function isFile(file: string): boolean {
  try {
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/**
 * The analyzer's file filter for `include`/`exclude` (globs relative to the configuration's
 * directory, matched with picomatch; `dot` files included). Undefined when neither is set.
 */
export function fileFilter(loaded: LoadedConfig): ((absolutePath: string) => boolean) | undefined {
  const { include, exclude } = loaded.config;
  if (!include?.length && !exclude?.length) return undefined;
  const base = loaded.dir ?? process.cwd();
  const isIncluded = include?.length ? picomatch(include, { dot: true }) : () => true;
  const isExcluded = exclude?.length ? picomatch(exclude, { dot: true }) : () => false;
  return (absolutePath) => {
    const rel = path.relative(base, absolutePath).split(path.sep).join('/');
    return isIncluded(rel) && !isExcluded(rel);
  };
}
