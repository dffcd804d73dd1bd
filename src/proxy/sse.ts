/**
 * Server-Sent Events framing (WHATWG HTML §9.2 "Server-sent events"), as the Streamable HTTP
 * transport uses it: `event: message` + `data: <one JSON-RPC message>` per event.
 */

export interface SseEvent {
  /** `event:` field; `message` when absent. */
  event: string;
  /** `data:` lines joined with `\n`. */
  data: string;
  /** `id:` field, if any. */
  id?: string;
}

/** Incremental SSE parser: feed it text chunks, it returns the events completed so far. */
export class SseParser {
  #buffer = '';
  #data: string[] = [];
  #event = '';
  #id: string | undefined;
  #sawField = false;

  feed(chunk: string): SseEvent[] {
    this.#buffer += chunk;
    const out: SseEvent[] = [];
    let start = 0;
    for (;;) {
      let nl = -1;
      for (let i = start; i < this.#buffer.length; i++) {
        const c = this.#buffer.charCodeAt(i);
        if (c === 10 || c === 13) {
          nl = i;
          break;
        }
      }
      if (nl < 0) break;
      // A lone '\r' at the end of the buffer may be the first half of '\r\n': wait for more.
      if (this.#buffer.charCodeAt(nl) === 13 && nl + 1 === this.#buffer.length) break;
      const line = this.#buffer.slice(start, nl);
      start = nl + (this.#buffer.charCodeAt(nl) === 13 && this.#buffer.charCodeAt(nl + 1) === 10 ? 2 : 1);
      this.#line(line, out);
    }
    this.#buffer = this.#buffer.slice(start);
    return out;
  }

  #line(line: string, out: SseEvent[]): void {
    if (line === '') {
      if (this.#sawField && this.#data.length > 0) {
        const ev: SseEvent = { event: this.#event || 'message', data: this.#data.join('\n') };
        if (this.#id !== undefined) ev.id = this.#id;
        out.push(ev);
      }
      this.#data = [];
      this.#event = '';
      this.#id = undefined;
      this.#sawField = false;
      return;
    }
    if (line.startsWith(':')) return; // comment / keep-alive
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    this.#sawField = true;
    if (field === 'data') this.#data.push(value);
    else if (field === 'event') this.#event = value;
    else if (field === 'id') this.#id = value;
  }
}

/** One SSE event carrying a JSON-RPC message. */
export function sseMessage(message: unknown, id?: string): string {
  return `${id !== undefined ? `id: ${id}\n` : ''}event: message\ndata: ${JSON.stringify(message)}\n\n`;
}

/** An SSE comment line, used as keep-alive so idle streams survive load balancer read timeouts. */
export const SSE_KEEPALIVE = ': keep-alive\n\n';
