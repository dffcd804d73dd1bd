import { PassThrough } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { isMessageEvent, parseSse, readSse, sseMessage, sseMessageText, type SseEvent } from '../../src/proxy/http/sse.js';

describe('SSE reading (eventsource-parser) and framing', () => {
  it('reads a body with LF, CRLF and CR line ends, comments, multi-line data and a last event without a blank line', () => {
    const events = parseSse(': keep-alive\n\nid: 1\nevent: message\ndata: {"a"\r\ndata: :1}\r\n\r\nid: prime\nretry: 1000\ndata: \r\rdata: last');
    expect(events.map((e) => ({ id: e.id, event: e.event, data: e.data }))).toEqual([
      { id: '1', event: 'message', data: '{"a"\n:1}' },
      { id: 'prime', event: undefined, data: '' },
      { id: undefined, event: undefined, data: 'last' },
    ]);
    // Priming events (spec 2025-11-25: an id and no data) carry no JSON-RPC message.
    expect(events.map(isMessageEvent)).toEqual([true, false, true]);
    expect(isMessageEvent({ event: 'endpoint', data: '/message?sessionId=x' } as SseEvent)).toBe(false);
  });

  it('reads a stream split anywhere, even inside a UTF-8 character, and reports its end once', async () => {
    const text = sseMessage({ jsonrpc: '2.0', method: 'notifications/message', params: { data: 'héllo ✓' } }, 'e1') + 'data: {"tail":true}';
    const bytes = Buffer.from(text);
    const stream = new PassThrough();
    const got: SseEvent[] = [];
    let ends = 0;
    const done = new Promise<void>((resolve) => readSse(stream as unknown as IncomingMessage, (e) => got.push(e), () => (ends++, resolve()), () => undefined));
    for (let i = 0; i < bytes.length; i += 7) stream.write(bytes.subarray(i, i + 7));
    stream.end();
    await done;
    expect(ends).toBe(1);
    expect(got.map((e) => e.data)).toEqual([JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { data: 'héllo ✓' } }), '{"tail":true}']);
    expect(got[0]!.id).toBe('e1');
  });

  it('frames JSON text as one message event, multi-line text as several data lines, and reads it back', () => {
    const json = '{\n  "jsonrpc": "2.0",\n  "id": 1,\n  "result": {}\n}';
    const framed = sseMessageText(json, 'p1_2');
    expect(framed.startsWith('id: p1_2\nevent: message\ndata: {\ndata:   "jsonrpc"')).toBe(true);
    const [ev] = parseSse(framed);
    expect(ev!.data).toBe(json);
    expect(JSON.parse(ev!.data)).toEqual({ jsonrpc: '2.0', id: 1, result: {} });
  });
});
