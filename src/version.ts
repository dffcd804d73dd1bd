import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
/** This package's version, read from its `package.json` (works from `src/` under vitest and from `dist/src/`). */
function readVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = require(rel) as { name?: string; version?: string };
      if (pkg.name === 'mcp-migrate' && pkg.version) return pkg.version;
    } catch {
      /* try the next location */
    }
  }
  return '0.0.0';
}
export const VERSION = readVersion();
export const TOOL_NAME = 'mcp-migrate';
