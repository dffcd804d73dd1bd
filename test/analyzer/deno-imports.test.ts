import { describe, expect, it } from 'vitest';
import { npmSpecifierToBare } from '../../src/analyzer/deno-imports.js';

describe('npmSpecifierToBare (Deno `npm:` specifiers)', () => {
  it('drops the scheme and the version range, keeps the subpath', () => {
    expect(npmSpecifierToBare('npm:@modelcontextprotocol/sdk@^1.28.0/server/mcp.js')).toBe('@modelcontextprotocol/sdk/server/mcp.js');
    expect(npmSpecifierToBare('npm:zod@4')).toBe('zod');
    expect(npmSpecifierToBare('npm:/express')).toBe('express');
    expect(npmSpecifierToBare('npm:hono/cors')).toBe('hono/cors');
    expect(npmSpecifierToBare('./local.ts')).toBe('./local.ts');
  });
});
