import { describe, expect, it } from 'vitest';
import {
  acknowledgedFilter,
  discoverResult,
  inputRequestOf,
  matchesFilter,
  missingCapability,
  modernError,
  modernResult,
  readListenFilter,
  requestNotification,
  servesSubscriptions,
  tagSubscription,
  upstreamInfo,
} from '../../src/proxy/fronts/modern/translate.js';

// The InitializeResult of server-everything 2026.8.31 (abridged).
const INIT = {
  protocolVersion: '2025-11-25',
  capabilities: {
    tools: { listChanged: true },
    prompts: { listChanged: true },
    resources: { subscribe: true, listChanged: true },
    logging: {},
    completions: {},
    tasks: { list: {}, cancel: {}, requests: { tools: { call: {} } } },
  },
  serverInfo: { name: 'mcp-servers/everything', version: '2.0.0' },
  instructions: 'Use the echo tool.',
};

describe('server/discover from the upstream InitializeResult', () => {
  it('supported modern versions, capabilities without legacy tasks, instructions, serverInfo in _meta, caching hints', () => {
    const r = discoverResult(upstreamInfo(INIT));
    expect(r).toEqual({
      resultType: 'complete',
      supportedVersions: ['2026-07-28'],
      capabilities: { tools: { listChanged: true }, prompts: { listChanged: true }, resources: { subscribe: true, listChanged: true }, logging: {}, completions: {} },
      instructions: 'Use the echo tool.',
      ttlMs: 0,
      cacheScope: 'private',
      _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'mcp-servers/everything', version: '2.0.0' } },
    });
  });
});

describe('results and errors', () => {
  const info = upstreamInfo(INIT);
  it('every result gets resultType complete and serverInfo; cacheable ones get ttlMs and cacheScope', () => {
    const list = modernResult('tools/list', { tools: [] }, info);
    expect(list).toMatchObject({ resultType: 'complete', ttlMs: 0, cacheScope: 'private', _meta: { 'io.modelcontextprotocol/serverInfo': INIT.serverInfo } });
    const call = modernResult('tools/call', { content: [], _meta: { x: 1 } }, info);
    expect(call).toEqual({ content: [], resultType: 'complete', _meta: { x: 1, 'io.modelcontextprotocol/serverInfo': INIT.serverInfo } });
    expect(modernResult('resources/read', { contents: [], ttlMs: 5000, cacheScope: 'public' }, info)).toMatchObject({ ttlMs: 5000, cacheScope: 'public' });
  });

  it('resources/read not found: -32002 becomes -32602 with data.uri', () => {
    expect(modernError('resources/read', { uri: 'test://nope' }, { code: -32002, message: 'Resource not found' })).toEqual({
      code: -32602,
      message: 'Resource not found',
      data: { uri: 'test://nope' },
    });
    expect(modernError('tools/call', {}, { code: -32002, message: 'x' })).toEqual({ code: -32002, message: 'x' });
  });
});

describe('notifications on a request stream', () => {
  const progress = { jsonrpc: '2.0' as const, method: 'notifications/progress', params: { progressToken: 'up-1', progress: 1, total: 2 } };
  const log = (level: string) => ({ jsonrpc: '2.0' as const, method: 'notifications/message', params: { level, data: 'x' } });

  it('progress passes with the client token, or not at all without one', () => {
    expect(requestNotification(progress, {}, 'client-7')?.params).toEqual({ progressToken: 'client-7', progress: 1, total: 2 });
    expect(requestNotification(progress, {}, undefined)).toBeUndefined();
  });

  it('log messages only when the request set logLevel, and only at or above it', () => {
    expect(requestNotification(log('error'), {}, undefined)).toBeUndefined();
    expect(requestNotification(log('error'), { logLevel: 'warning' }, undefined)).toBeDefined();
    expect(requestNotification(log('info'), { logLevel: 'warning' }, undefined)).toBeUndefined();
  });

  it('list changes never go on a request stream', () => {
    expect(requestNotification({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' }, { logLevel: 'debug' }, 1)).toBeUndefined();
  });
});

describe('MRTR input requests', () => {
  it('names the capability a server request needs', () => {
    expect(missingCapability({ method: 'sampling/createMessage', params: {} }, {})).toEqual({ sampling: {} });
    expect(missingCapability({ method: 'sampling/createMessage', params: {} }, { sampling: {} })).toBeUndefined();
    expect(missingCapability({ method: 'elicitation/create', params: { mode: 'form' } }, { elicitation: {} })).toBeUndefined();
    expect(missingCapability({ method: 'elicitation/create', params: { mode: 'url', url: 'https://x' } }, { elicitation: {} })).toEqual({ elicitation: { url: {} } });
    expect(missingCapability({ method: 'roots/list' }, { sampling: {} })).toEqual({ roots: {} });
  });

  it('drops the URL-elicitation id that 2026-07-28 removed', () => {
    expect(inputRequestOf({ method: 'elicitation/create', params: { mode: 'url', url: 'https://x', elicitationId: 'e1', message: 'm' } })).toEqual({
      method: 'elicitation/create',
      params: { mode: 'url', url: 'https://x', message: 'm' },
    });
  });
});

describe('subscriptions/listen filters', () => {
  it('parses, validates, acknowledges the supported subset and matches notifications', () => {
    expect(readListenFilter({ notifications: { toolsListChanged: 'yes' } })).toMatch(/boolean/);
    expect(readListenFilter({ notifications: { resourceSubscriptions: [1] } })).toMatch(/strings/);
    const f = readListenFilter({ notifications: { toolsListChanged: true, promptsListChanged: false, resourceSubscriptions: ['a://1', 'a://1'] } });
    expect(f).toEqual({ toolsListChanged: true, promptsListChanged: false, resourceSubscriptions: ['a://1'] });
    const ack = acknowledgedFilter(f as object, INIT.capabilities);
    expect(ack).toEqual({ toolsListChanged: true, resourceSubscriptions: ['a://1'] });
    expect(acknowledgedFilter({ toolsListChanged: true, resourceSubscriptions: ['a://1'] }, { tools: {} })).toEqual({});
    expect(matchesFilter({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' }, ack)).toBe(true);
    expect(matchesFilter({ jsonrpc: '2.0', method: 'notifications/prompts/list_changed' }, ack)).toBe(false);
    expect(matchesFilter({ jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri: 'a://1' } }, ack)).toBe(true);
    expect(matchesFilter({ jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri: 'a://2' } }, ack)).toBe(false);
    expect(matchesFilter({ jsonrpc: '2.0', method: 'notifications/message', params: {} }, ack)).toBe(false);
    expect(servesSubscriptions(INIT.capabilities)).toBe(true);
    expect(servesSubscriptions({ tools: {} })).toBe(false);
  });

  it('tags notifications with the subscription id in _meta', () => {
    expect(tagSubscription({ jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri: 'a://1' } }, 5)).toEqual({
      jsonrpc: '2.0',
      method: 'notifications/resources/updated',
      params: { uri: 'a://1', _meta: { 'io.modelcontextprotocol/subscriptionId': 5 } },
    });
  });
});
