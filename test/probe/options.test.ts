import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/analyzer/types.js';
import { classify, describeExchange } from '../../src/probe/checks.js';
import { parseEndpointUrl, parseHeaders, parseToolCall, resolveLegacySseUrl, sessionToken, tokenSessions, toolArguments } from '../../src/probe/options.js';
import type { Exchange } from '../../src/probe/types.js';

describe('parseToolCall', () => {
  it('takes a tool name alone or followed by JSON arguments; {{session}} becomes the session value', () => {
    expect(parseToolCall('--read', 'pwd')).toEqual({ name: 'pwd', argumentsJson: '{}' });
    const spec = parseToolCall('--write', ' cd {"path": "/srv/{{session}}"} ');
    expect(spec.name).toBe('cd');
    expect(toolArguments(spec, sessionToken('ab12cd', 3))).toEqual({ path: '/srv/mcp-migrate-probe-ab12cd-3' });
    expect(parseToolCall('--write', 'set{"a":1}')).toEqual({ name: 'set', argumentsJson: '{"a":1}' });
  });

  it.each([
    ['', /must be TOOL/],
    ['cd {"path": ', /arguments of cd are not a JSON object/],
    ['cd [1, 2]', /not a JSON object/],
    ['cd "x"', /not a JSON object/],
  ])('refuses %j', (value, message) => {
    expect(() => parseToolCall('--write', value)).toThrow(UsageError);
    expect(() => parseToolCall('--write', value)).toThrow(message);
  });
});

describe('other option parsers', () => {
  it('headers: Name: value, names lower-cased, values may contain colons', () => {
    expect(parseHeaders(['Authorization: Bearer a:b', 'X-Tenant:7'])).toEqual({ authorization: 'Bearer a:b', 'x-tenant': '7' });
    expect(() => parseHeaders(['nocolon'])).toThrow(/--header must be 'Name: value'/);
    expect(() => parseHeaders([': v'])).toThrow(UsageError);
  });

  it('the endpoint must be an absolute http(s) URL', () => {
    expect(parseEndpointUrl('https://mcp.example.com/mcp').href).toBe('https://mcp.example.com/mcp');
    expect(() => parseEndpointUrl('/mcp')).toThrow(/absolute/);
    expect(() => parseEndpointUrl('ws://x/mcp')).toThrow(/http: or https:/);
  });

  it('the legacy SSE endpoint defaults to /sse on the origin; a relative value resolves against the endpoint', () => {
    const base = new URL('https://h.example/api/mcp');
    expect(resolveLegacySseUrl('', base).href).toBe('https://h.example/sse');
    expect(resolveLegacySseUrl('events', base).href).toBe('https://h.example/api/events');
    expect(resolveLegacySseUrl('http://other/sse', base).href).toBe('http://other/sse');
  });

  it('finds which sessions of this run a value names', () => {
    expect(tokenSessions('/srv/mcp-migrate-probe-ab12cd-4 and mcp-migrate-probe-ab12cd-12', 'ab12cd')).toEqual([4, 12]);
    expect(tokenSessions('/srv/mcp-migrate-probe-zzzzzz-4', 'ab12cd')).toEqual([]);
  });
});

describe('classify: what a failed request of a live session shows', () => {
  const ex = (status: number, message = '', code?: number): Exchange => ({ at: 0, method: 'POST', path: '/mcp', status, error: { message, ...(code !== undefined ? { code } : {}) } });
  it.each<[Exchange, string]>([
    [ex(404, 'Session not found', -32001), 'session-unknown'],
    [ex(400, 'Bad Request: No valid session ID provided', -32000), 'session-unknown'],
    [ex(400, 'Bad Request: Server not initialized', -32000), 'not-initialized'],
    [ex(400, 'Invalid params', -32602), 'rpc-error'],
    [ex(401, 'Unauthorized'), 'auth'],
    [ex(403, 'Forbidden'), 'auth'],
    [ex(413, 'Request Entity Too Large'), 'too-large'],
    [ex(504, 'Gateway Time-out'), 'gateway-timeout'],
    [ex(502, 'Bad Gateway'), 'bad-gateway'],
    [{ at: 0, method: 'POST', path: '/mcp', network: 'timed out' }, 'timeout'],
    [{ at: 0, method: 'POST', path: '/mcp', network: 'aborted (--timeout reached)' }, 'aborted'],
    [{ at: 0, method: 'POST', path: '/mcp', network: 'fetch failed (ECONNREFUSED)' }, 'unreachable'],
  ])('%j → %s', (exchange, symptom) => {
    expect(classify(exchange)).toBe(symptom);
  });

  it('without a failed exchange: the SDK request timeout, else a JSON-RPC error', () => {
    expect(classify({ at: 0, method: 'POST', path: '/mcp', status: 200 }, Object.assign(new Error('Request timed out'), { code: -32001 }))).toBe('timeout');
    expect(classify({ at: 0, method: 'POST', path: '/mcp', status: 200 }, Object.assign(new Error('Session not found'), { code: -32001 }))).toBe('rpc-error');
    expect(classify(undefined, new Error('MCP error -32602: Invalid arguments'))).toBe('rpc-error');
  });

  it('describes an exchange with its status, replica and JSON-RPC error', () => {
    expect(describeExchange({ ...ex(400, 'Bad Request: No valid session ID provided', -32000), replica: 'b' })).toBe('400 on replica b: "Bad Request: No valid session ID provided" (-32000)');
    expect(describeExchange({ at: 0, method: 'GET', path: '/mcp', network: 'timed out' })).toBe('no answer (timed out)');
  });
});
