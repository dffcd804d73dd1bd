/**
 * `@mcp-migrate/runtime` is what a migrated server installs in production (issue 13: at most 5 MB
 * beyond ioredis, measured by `bench/runtime-size/run.mjs`). It stays light by construction: ioredis is
 * its only dependency, and its sources import nothing else (Node built-ins and its own files; the MCP
 * SDK's shapes are declared locally, never imported).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const RUNTIME = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../packages/runtime');
const pkg = JSON.parse(readFileSync(path.join(RUNTIME, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;

it('depends on ioredis and nothing else', () => {
  expect(Object.keys(pkg.dependencies ?? {})).toEqual(['ioredis']);
  for (const field of ['peerDependencies', 'optionalDependencies', 'bundleDependencies', 'bundledDependencies']) expect(pkg[field], field).toBeUndefined();
});

it('its sources import only Node built-ins, ioredis and its own files', () => {
  const imported = new Map<string, string>();
  for (const file of readdirSync(path.join(RUNTIME, 'src')).filter((f) => f.endsWith('.ts'))) {
    const text = readFileSync(path.join(RUNTIME, 'src', file), 'utf8');
    for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'";]*?from\s+['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)|\brequire\(\s*['"]([^'"]+)['"]\s*\)/g)) {
      imported.set(m[1] ?? m[2] ?? m[3]!, file);
    }
  }
  expect(imported.size).toBeGreaterThan(10);
  const foreign = [...imported].filter(([spec]) => !spec.startsWith('node:') && !spec.startsWith('./') && spec !== 'ioredis');
  expect(foreign).toEqual([]);
});
