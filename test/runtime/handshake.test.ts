import { describe, expect, it } from 'vitest';
import { applyChange, handshakeReplay, isRuntimeId, stateSync, type SessionRecord } from '@mcp-migrate/runtime';

const record: SessionRecord = {
  id: 'sid',
  principal: 'p',
  protocolVersion: '2025-06-18',
  initializeParams: { protocolVersion: '2025-06-18', capabilities: { roots: {} }, clientInfo: { name: 'c', version: '1' } },
  loggingLevel: 'debug',
  subscriptions: ['demo://a', 'demo://b'],
  createdAt: 1,
  lastSeenAt: 1,
  ttlMs: 1000,
  revision: 3,
};

describe('handshakeReplay', () => {
  it('replays initialize, initialized, setLevel and every subscription, with runtime ids', () => {
    const msgs = handshakeReplay(record);
    expect(msgs.map((m) => m.method)).toEqual([
      'initialize',
      'notifications/initialized',
      'logging/setLevel',
      'resources/subscribe',
      'resources/subscribe',
    ]);
    expect(msgs[0]!.params).toEqual(record.initializeParams);
    expect(msgs[2]!.params).toEqual({ level: 'debug' });
    expect(msgs.slice(3).map((m) => m.params?.uri)).toEqual(['demo://a', 'demo://b']);
    const ids = msgs.filter((m) => 'id' in m).map((m) => (m as { id: unknown }).id);
    expect(ids.every(isRuntimeId)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect('id' in msgs[1]!).toBe(false);
  });

  it('replays only initialize and initialized for a fresh session', () => {
    const msgs = handshakeReplay({ ...record, subscriptions: [], loggingLevel: undefined } as SessionRecord);
    expect(msgs.map((m) => m.method)).toEqual(['initialize', 'notifications/initialized']);
  });
});

describe('stateSync', () => {
  it('sends only the difference', () => {
    const msgs = stateSync(
      { loggingLevel: 'debug', subscriptions: ['demo://a', 'demo://gone'] },
      { loggingLevel: 'error', subscriptions: ['demo://a', 'demo://new'] },
    );
    expect(msgs.map((m) => [m.method, m.params])).toEqual([
      ['logging/setLevel', { level: 'error' }],
      ['resources/subscribe', { uri: 'demo://new' }],
      ['resources/unsubscribe', { uri: 'demo://gone' }],
    ]);
    expect(stateSync(record, record)).toEqual([]);
  });
});

describe('applyChange', () => {
  it('returns a new record with the change and the next revision', () => {
    const a = applyChange(record, { kind: 'subscribe', uri: 'demo://0' });
    expect(a.subscriptions).toEqual(['demo://0', 'demo://a', 'demo://b']);
    expect(a.revision).toBe(4);
    expect(record.subscriptions).toEqual(['demo://a', 'demo://b']);
    expect(applyChange(a, { kind: 'subscribe', uri: 'demo://0' }).subscriptions).toHaveLength(3);
    expect(applyChange(a, { kind: 'unsubscribe', uri: 'demo://a' }).subscriptions).toEqual(['demo://0', 'demo://b']);
    expect(applyChange(a, { kind: 'loggingLevel', level: 'info' }).loggingLevel).toBe('info');
  });
});
