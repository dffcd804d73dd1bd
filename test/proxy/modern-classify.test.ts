import { describe, expect, it } from 'vitest';
import { classifyPost, decodeHeaderValue, type EraDecision } from '../../src/proxy/fronts/modern/classify.js';

const META = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientCapabilities': {},
  'io.modelcontextprotocol/clientInfo': { name: 't', version: '1' },
};

function headers(method: string, extra: Record<string, string> = {}): Record<string, string> {
  return { 'mcp-protocol-version': '2026-07-28', 'mcp-method': method, ...extra };
}

function req(method: string, params: Record<string, unknown> = { _meta: META }, id: number | string = 7) {
  return { jsonrpc: '2.0', id, method, params };
}

function rejected(d: EraDecision): { status: number; code: number; id: unknown; data?: unknown } {
  if (d.era !== 'reject') throw new Error(`expected a rejection, got ${d.era}`);
  return { status: d.status, code: d.error.code, id: d.id, data: d.error.data };
}

describe('classifyPost: era per request', () => {
  it('modern: a request with the _meta claim and the standard headers', () => {
    const d = classifyPost(headers('tools/list'), req('tools/list'));
    expect(d.era).toBe('modern');
    if (d.era === 'modern') {
      expect(d.envelope.protocolVersion).toBe('2026-07-28');
      expect(d.envelope.clientCapabilities).toEqual({});
    }
  });

  it('legacy: initialize without a claim, requests without a claim, responses, batches, session traffic', () => {
    expect(classifyPost({}, req('initialize', { protocolVersion: '2025-11-25', capabilities: {} })).era).toBe('legacy');
    expect(classifyPost({ 'mcp-protocol-version': '2025-11-25' }, req('tools/list', {})).era).toBe('legacy');
    expect(classifyPost({}, { jsonrpc: '2.0', id: 1, result: {} }).era).toBe('legacy');
    expect(classifyPost({}, [req('ping', {})]).era).toBe('legacy');
    expect(classifyPost({}, { jsonrpc: '2.0', method: 'notifications/initialized' }).era).toBe('legacy');
    // A session id fixes the era: even a modern-looking body stays on the legacy path.
    expect(classifyPost({ ...headers('tools/list'), 'mcp-session-id': 'x' }, req('tools/list')).era).toBe('legacy');
    // Not JSON-RPC at all: the legacy path answers -32600.
    expect(classifyPost({}, { hello: 1 }).era).toBe('legacy');
  });

  it('an unknown pre-2026 MCP-Protocol-Version without a claim stays legacy (answered there)', () => {
    expect(classifyPost({ 'mcp-protocol-version': '1999-01-01' }, req('ping', {})).era).toBe('legacy');
  });

  it('modern initialize (claim present) is modern, to be answered 404 by the front', () => {
    expect(classifyPost(headers('initialize'), req('initialize')).era).toBe('modern');
  });

  it('initialize with a modern header but no claim: -32020', () => {
    const r = rejected(classifyPost(headers('initialize'), req('initialize', { protocolVersion: '2025-11-25' })));
    expect(r).toMatchObject({ status: 400, code: -32020, id: 7 });
  });

  it('a batch containing a modern element: 400 -32600', () => {
    expect(rejected(classifyPost({}, [req('tools/list')]))).toMatchObject({ status: 400, code: -32600 });
  });
});

describe('classifyPost: _meta validation (-32602, HTTP 400)', () => {
  it('modern header, no _meta at all', () => {
    const r = rejected(classifyPost(headers('server/discover'), req('server/discover', {}, 101)));
    expect(r).toMatchObject({ status: 400, code: -32602, id: 101 });
  });

  it('modern header, _meta without protocolVersion', () => {
    const { ['io.modelcontextprotocol/protocolVersion']: _, ...rest } = META;
    const r = rejected(classifyPost(headers('server/discover'), req('server/discover', { _meta: rest }, 102)));
    expect(r).toMatchObject({ status: 400, code: -32602, id: 102 });
  });

  it('claim without clientCapabilities', () => {
    const { ['io.modelcontextprotocol/clientCapabilities']: _, ...rest } = META;
    const r = rejected(classifyPost(headers('server/discover'), req('server/discover', { _meta: rest }, 104)));
    expect(r).toMatchObject({ status: 400, code: -32602, id: 104 });
    expect(JSON.stringify(r.data)).toContain('clientCapabilities');
  });

  it('clientInfo is optional; a malformed one or an unknown logLevel is refused', () => {
    const { ['io.modelcontextprotocol/clientInfo']: _, ...noInfo } = META;
    expect(classifyPost(headers('server/discover'), req('server/discover', { _meta: noInfo })).era).toBe('modern');
    expect(rejected(classifyPost(headers('server/discover'), req('server/discover', { _meta: { ...META, 'io.modelcontextprotocol/clientInfo': 'x' } }))).code).toBe(-32602);
    expect(rejected(classifyPost(headers('server/discover'), req('server/discover', { _meta: { ...META, 'io.modelcontextprotocol/logLevel': 'loud' } }))).code).toBe(-32602);
    const ok = classifyPost(headers('tools/list'), req('tools/list', { _meta: { ...META, 'io.modelcontextprotocol/logLevel': 'info' } }));
    expect(ok.era === 'modern' && ok.envelope.logLevel).toBe('info');
  });

  it('clientCapabilities must be an object', () => {
    const r = rejected(classifyPost(headers('tools/list'), req('tools/list', { _meta: { ...META, 'io.modelcontextprotocol/clientCapabilities': [] } })));
    expect(r.code).toBe(-32602);
  });
});

describe('classifyPost: versions and headers', () => {
  it('unsupported version: 400 -32022 with supported[] and requested', () => {
    const meta = { ...META, 'io.modelcontextprotocol/protocolVersion': 'v999.0.0' };
    const r = rejected(classifyPost(headers('server/discover', { 'mcp-protocol-version': 'v999.0.0' }), req('server/discover', { _meta: meta }, 301)));
    expect(r).toEqual({ status: 400, code: -32022, id: 301, data: { supported: ['2026-07-28'], requested: 'v999.0.0' } });
  });

  it('a legacy version claimed in _meta without a session: -32022', () => {
    const meta = { ...META, 'io.modelcontextprotocol/protocolVersion': '2025-11-25' };
    const r = rejected(classifyPost(headers('tools/list', { 'mcp-protocol-version': '2025-11-25' }), req('tools/list', { _meta: meta })));
    expect(r.code).toBe(-32022);
  });

  it('MCP-Protocol-Version header ≠ _meta version: 400 -32020', () => {
    const meta = { ...META, 'io.modelcontextprotocol/protocolVersion': 'v999.0.0' };
    const r = rejected(classifyPost(headers('server/discover'), req('server/discover', { _meta: meta }, 302)));
    expect(r).toMatchObject({ status: 400, code: -32020, id: 302 });
  });

  it('missing MCP-Protocol-Version or Mcp-Method, or Mcp-Method ≠ method: -32020', () => {
    expect(rejected(classifyPost({ 'mcp-method': 'tools/list' }, req('tools/list'))).code).toBe(-32020);
    expect(rejected(classifyPost({ 'mcp-protocol-version': '2026-07-28' }, req('tools/list'))).code).toBe(-32020);
    expect(rejected(classifyPost(headers('prompts/list'), req('tools/list'))).code).toBe(-32020);
  });

  it('Mcp-Name: required for tools/call, prompts/get, resources/read; must match the body; Base64 sentinel decoded', () => {
    const call = req('tools/call', { name: 'echo', arguments: {}, _meta: META });
    expect(rejected(classifyPost(headers('tools/call'), call)).code).toBe(-32020);
    expect(rejected(classifyPost(headers('tools/call', { 'mcp-name': 'other' }), call)).code).toBe(-32020);
    expect(classifyPost(headers('tools/call', { 'mcp-name': 'echo' }), call).era).toBe('modern');
    const read = req('resources/read', { uri: 'demo://résumé', _meta: META });
    const encoded = `=?base64?${Buffer.from('demo://résumé').toString('base64')}?=`;
    expect(classifyPost(headers('resources/read', { 'mcp-name': encoded }), read).era).toBe('modern');
    expect(rejected(classifyPost(headers('resources/read', { 'mcp-name': '=?base64?***?=' }), read)).code).toBe(-32020);
    // tools/list carries no name: no Mcp-Name needed.
    expect(classifyPost(headers('tools/list'), req('tools/list')).era).toBe('modern');
  });

  it('modern notifications: claim or modern header → modern-notification', () => {
    expect(classifyPost(headers('notifications/cancelled'), { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } }).era).toBe(
      'modern-notification',
    );
  });
});

describe('decodeHeaderValue', () => {
  it('plain values pass, sentinel values decode, malformed sentinels are refused', () => {
    expect(decodeHeaderValue('us-west1')).toBe('us-west1');
    expect(decodeHeaderValue('=?base64?SGVsbG8sIOS4lueVjA==?=')).toBe('Hello, 世界');
    expect(decodeHeaderValue('=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=')).toBe('=?base64?literal?=');
    expect(decodeHeaderValue('=?base64?SGVsbG8')).toBeUndefined();
    expect(decodeHeaderValue('=?base64?/w==?=')).toBeUndefined(); // not UTF-8
  });
});
