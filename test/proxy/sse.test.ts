import { describe, expect, it } from 'vitest';
import { SseParser, sseMessage } from '../../src/proxy/sse.js';

describe('SseParser', () => {
  it('parses events split across chunks, with LF, CRLF and CR line ends', () => {
    const p = new SseParser();
    expect(p.feed('id: 1\nevent: message\ndata: {"a"')).toEqual([]);
    expect(p.feed(':1}\n\nid: 2\r\ndata: x\r')).toEqual([{ event: 'message', data: '{"a":1}', id: '1' }]);
    // A trailing CR may be the first half of CRLF: the blank line is only known with the next chunk.
    expect(p.feed('\n\r\ndata: y\r\r')).toEqual([{ event: 'message', data: 'x', id: '2' }]);
    expect(p.feed('\n')).toEqual([{ event: 'message', data: 'y' }]);
  });

  it('joins multi-line data, ignores comments, and keeps priming events (empty data) as the spec says', () => {
    const p = new SseParser();
    expect(p.feed(': keep-alive\n\nid: prime\ndata: \n\ndata: a\ndata: b\n\nid: only-id\n\n')).toEqual([
      { event: 'message', data: '', id: 'prime' },
      { event: 'message', data: 'a\nb' },
    ]);
  });

  it('round-trips sseMessage', () => {
    const msg = { jsonrpc: '2.0', method: 'notifications/progress', params: { progress: 1, text: 'line\nbreak' } };
    const [ev] = new SseParser().feed(sseMessage(msg, 'e1'));
    expect(ev).toEqual({ event: 'message', id: 'e1', data: JSON.stringify(msg) });
    expect(JSON.parse(ev!.data)).toEqual(msg);
  });
});
