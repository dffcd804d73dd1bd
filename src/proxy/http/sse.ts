import type { IncomingMessage } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import { createParser, type EventSourceMessage } from 'eventsource-parser';

// The framing shared with the runtime's GET-stream serving code (one definition, in the runtime).
export { SSE_HEADERS, SSE_KEEPALIVE, sseMessage, ssePriming } from '@mcp-migrate/runtime';

/**
 * Server-Sent Events as the Streamable HTTP transport uses them (WHATWG HTML §9.2 "Server-sent events"):
 * `event: message` + `data: <one JSON-RPC message>` per event. Parsing is `eventsource-parser`'s (the
 * parser the MCP SDK's own clients use).
 */
export type SseEvent = EventSourceMessage;

/** The events of a whole SSE body (a buffered answer). */
export function parseSse(body: string): SseEvent[] {
  const out: SseEvent[] = [];
  const parser = createParser({ onEvent: (ev) => out.push(ev) });
  parser.feed(body);
  parser.feed('\n\n');
  return out;
}

/** Whether an event carries a JSON-RPC message: a `message` event (the default type) with data; priming events have none. */
export function isMessageEvent(ev: SseEvent): boolean {
  return ev.data !== '' && (ev.event === undefined || ev.event === 'message');
}

/**
 * Reads an SSE response as it arrives, event by event. `onEnd` runs once the response is complete (after
 * its last event, even one without a closing blank line), `onError` if it broke off.
 */
export function readSse(res: IncomingMessage, onEvent: (ev: SseEvent) => void, onEnd: () => void, onError: () => void): void {
  const parser = createParser({ onEvent });
  const decoder = new StringDecoder('utf8');
  res.on('data', (c: Buffer) => parser.feed(decoder.write(c)));
  let over = false;
  res.once('end', () => {
    if (over) return;
    over = true;
    parser.feed(decoder.end() + '\n\n');
    onEnd();
  });
  const broke = () => {
    if (over) return;
    over = true;
    onError();
  };
  res.once('error', broke);
  res.once('aborted', broke);
}

/** One SSE `message` event carrying JSON text as it is (multi-line text becomes several `data:` lines). */
export function sseMessageText(json: string, id?: string): string {
  const data = json.includes('\n') ? json.split(/\r\n|\r|\n/).join('\ndata: ') : json;
  return `${id !== undefined ? `id: ${id}\n` : ''}event: message\ndata: ${data}\n\n`;
}
