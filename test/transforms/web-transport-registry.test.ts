/**
 * `web-transport-registry` where the platform cannot hold the Redis connection the runtime needs: a
 * Cloudflare Worker recognized by its `wrangler.toml` beside the code (the fixtures cover the
 * `cloudflare:*` import), and an edge function (`export const runtime = 'edge'`). apply generates no
 * runtime code there; the marker says why and what to do instead.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { planApply } from '../../src/apply/engine.js';
import { FIXTURES } from './harness.js';

const HONO = readFileSync(path.join(FIXTURES, 'web-transport-registry', 'hono-map', 'input.ts'), 'utf8');

async function applyIn(files: Record<string, string>): Promise<{ text: string; notes: string[] }> {
  const dir = mkdtempSync(path.join(tmpdir(), 'mcp-migrate-web-platform-'));
  try {
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      writeFileSync(path.join(dir, name), text);
    }
    const r = await planApply({ paths: [dir], cwd: dir, store: 'redis', transforms: ['web-transport-registry'] });
    const change = r.changes.find((c) => c.file === 'src/server.ts');
    return { text: change?.after ?? files['src/server.ts']!, notes: r.notes.map((n) => `${n.kind} ${n.ruleId}: ${n.message}`) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('web-transport-registry on platforms without TCP sockets', () => {
  it('a Cloudflare Worker (wrangler.toml above the code): markers that say so, no runtime import', async () => {
    const { text, notes } = await applyIn({ 'wrangler.toml': 'name = "mcp"\nmain = "src/server.ts"\n', 'src/server.ts': HONO });
    expect(text).not.toContain('@mcp-migrate/runtime');
    expect(notes).toHaveLength(2);
    for (const n of notes) expect(n).toMatch(/^todo .*runs in a Cloudflare Worker, which cannot open the TCP connection to Redis/);
    expect(text.match(/@mcp-migrate-todo/g)).toHaveLength(2);
  });

  it('an edge function (export const runtime = "edge")', async () => {
    const { text, notes } = await applyIn({ 'src/server.ts': `${HONO}\nexport const runtime = 'edge';\n` });
    expect(text).not.toContain('@mcp-migrate/runtime');
    for (const n of notes) expect(n).toMatch(/runs in an edge function/);
  });

  it('the same server on Node is rewritten', async () => {
    const { text, notes } = await applyIn({ 'src/server.ts': HONO });
    expect(text).toContain("new SessionTransportRegistry<WebStandardStreamableHTTPServerTransport>({ kind: 'web' })");
    expect(notes.every((n) => n.startsWith('changed'))).toBe(true);
  });
});
