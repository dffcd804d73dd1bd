/**
 * The client side of the two-replica tests (proxy replicas in test/proxy/cross-replica.test.ts, apply's
 * `SessionTransportRegistry` replicas in test/runtime/transport-registry.test.ts): an SDK client that
 * answers server-initiated requests, a round-robin "load balancer" fetch, and a raw SSE reader.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CreateMessageRequestSchema, ElicitRequestSchema, ListRootsRequestSchema, LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

/** What {@link answeringClient}'s handlers answer: sampling, elicitation and roots/list. */
export const CLIENT_ANSWERS = {
  sampled: 'sampled-by-client',
  name: 'Ada Lovelace',
  root: 'file:///srv/example/project',
} as const;

/**
 * An SDK client (sampling, elicitation, roots capabilities) connected through `fetchFn` to `url`. It answers
 * every server-initiated request with {@link CLIENT_ANSWERS} and records each (`asked`: method and the id
 * it arrived with) and each `notifications/message` data (`logs`).
 */
export async function answeringClient(fetchFn: typeof fetch, url: string, name = 'replica-test') {
  const client = new Client({ name, version: '1.0.0' }, { capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } } });
  const asked: { method: string; id: unknown }[] = [];
  const logs: string[] = [];
  client.setRequestHandler(CreateMessageRequestSchema, async (_req, extra) => {
    asked.push({ method: 'sampling/createMessage', id: extra.requestId });
    return { model: 'test-model', role: 'assistant', content: { type: 'text', text: CLIENT_ANSWERS.sampled } };
  });
  client.setRequestHandler(ElicitRequestSchema, async (_req, extra) => {
    asked.push({ method: 'elicitation/create', id: extra.requestId });
    return { action: 'accept', content: { name: CLIENT_ANSWERS.name, check: true } };
  });
  client.setRequestHandler(ListRootsRequestSchema, async (_req, extra) => {
    asked.push({ method: 'roots/list', id: extra.requestId });
    return { roots: [{ uri: CLIENT_ANSWERS.root, name: 'project' }] };
  });
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
    logs.push(String(n.params.data));
  });
  const transport = new StreamableHTTPClientTransport(new URL(url), { fetch: fetchFn });
  await client.connect(transport);
  return { client, transport, asked, logs };
}

/** A fetch that sends each request to the next of `urls` in turn (a round-robin load balancer), recording which replica answered (`x-mcp-migrate-replica`). */
export function roundRobinFetch(urls: readonly string[]): { fetch: typeof fetch; served: { method: string; replica: string }[] } {
  let i = 0;
  const served: { method: string; replica: string }[] = [];
  const fetchFn = (async (_input: string | URL | Request, init?: RequestInit) => {
    const res = await fetch(urls[i++ % urls.length]!, init);
    served.push({ method: init?.method ?? 'GET', replica: res.headers.get('x-mcp-migrate-replica') ?? '?' });
    return res;
  }) as typeof fetch;
  return { fetch: fetchFn, served };
}

/** One SSE event as written on the wire (fields as they came; a priming event has `id` and `retry`, empty `data`). */
export interface RawSseEvent {
  id?: string;
  retry?: string;
  event?: string;
  data?: string;
}

/** Reads an SSE `Response` as it arrives: its events, the JSON-RPC messages among them, and whether it ended. */
export function readSseResponse<M = unknown>(res: Response): { events: RawSseEvent[]; messages: () => M[]; readonly ended: boolean; done: Promise<void> } {
  const events: RawSseEvent[] = [];
  let ended = false;
  const done = (async () => {
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let buf = '';
    try {
      for (;;) {
        const { done: over, value } = await reader.read();
        if (over) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const ev = parseBlock(buf.slice(0, i));
          buf = buf.slice(i + 2);
          if (ev) events.push(ev);
        }
      }
    } catch {
      /* aborted */
    }
    ended = true;
  })();
  return {
    events,
    messages: () => events.filter((e) => e.data).map((e) => JSON.parse(e.data!) as M),
    get ended() {
      return ended;
    },
    done,
  };
}

function parseBlock(block: string): RawSseEvent | undefined {
  const ev: RawSseEvent = {};
  let fields = 0;
  for (const line of block.split('\n')) {
    const m = /^(id|retry|event|data): ?(.*)$/.exec(line);
    if (m) {
      (ev as Record<string, string>)[m[1]!] = m[2]!;
      fields++;
    }
  }
  return fields > 0 ? ev : undefined;
}

/** A standalone GET stream request (not awaited), abortable. */
export function openGetStream(url: string, sid: string, headers: Record<string, string> = {}, protocolVersion = '2025-06-18') {
  const ac = new AbortController();
  const response = fetch(url, { headers: { accept: 'text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': protocolVersion, ...headers }, signal: ac.signal });
  return { abort: () => ac.abort(), response };
}
