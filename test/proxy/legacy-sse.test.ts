/**
 * The legacy HTTP+SSE front (spec 2024-11-05 §HTTP with SSE) in process, on the seams it builds on:
 * `SessionStreams` (the runtime's in-memory implementation, observed), `ServerRequestRouter` (a small
 * double per replica, logging what it was asked) and `UpstreamSession.exchange` (a fake upstream).
 * Two proxies sharing one store, bus and streams stand for two replicas.
 * The Redis implementations, the built CLI, nginx and server-everything run in
 * test/integration/legacy-sse.test.ts.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { afterEach, describe, expect, it } from 'vitest';
import {
  MemoryMessageBus,
  MemorySessionStore,
  SessionIdCodec,
  type JsonRpcMessage,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type SessionRecord,
} from '@mcp-migrate/runtime';
import type { ServerRequestRouter } from '@mcp-migrate/runtime';
import { MemorySessionStreams, type StreamEvent } from '@mcp-migrate/runtime';
import { createParser, type EventSourceMessage as SseEvent } from 'eventsource-parser';
import {
  UpstreamError,
  type AppliedState,
  type CloseReason,
  type ExchangeSink,
  type ForwardResult,
  type InitializeOutcome,
  type UpstreamConnector,
  type UpstreamSession,
} from '../../src/proxy/upstreams/upstream.js';
import { closeAll, SECRET, startTestProxy, pollUntil, type TestProxy } from '../helpers/in-process-proxy.js';

afterEach(() => closeAll());

// ------------------------------------------------------------------ test doubles

/** The runtime's in-process `SessionStreams`, observed: what was appended to standalone streams, which sessions were deleted. */
class ObservedStreams extends MemorySessionStreams {
  readonly appended = new Map<string, JsonRpcMessage[]>();
  readonly deleted: string[] = [];

  override async append(sessionId: string, streamId: string, message: JsonRpcMessage, options?: { end?: boolean }): Promise<StreamEvent> {
    if (streamId === 'g') this.appended.set(sessionId, [...(this.appended.get(sessionId) ?? []), message]);
    return await super.append(sessionId, streamId, message, options);
  }

  override async delete(sessionId: string): Promise<void> {
    this.deleted.push(sessionId);
    await super.delete(sessionId);
  }

  messages(sessionId: string): JsonRpcMessage[] {
    return this.appended.get(sessionId) ?? [];
  }
}

/** What the router doubles of all replicas saw. */
class RouterLog {
  /** Ids the routers claim (as if published to another replica). */
  readonly remote = new Set<string>();
  readonly replies: { replicaId: string; sessionId: string; response: JsonRpcResponse }[] = [];
  readonly forgotten: string[] = [];
}

/** `ServerRequestRouter` double, one per replica: ids in `log.remote` are claimed, everything else is `unknown`. */
class FakeRouter implements ServerRequestRouter {
  constructor(
    readonly replicaId: string,
    readonly log: RouterLog,
  ) {}

  outgoing(_sessionId: string, request: JsonRpcRequest): JsonRpcRequest {
    return request;
  }

  async reply(sessionId: string, response: JsonRpcResponse): Promise<'local' | 'remote' | 'unknown'> {
    this.log.replies.push({ replicaId: this.replicaId, sessionId, response });
    return this.log.remote.has(String(response.id)) ? 'remote' : 'unknown';
  }

  clientIdOf(): string | undefined {
    return undefined;
  }

  forget(sessionId: string): void {
    this.log.forgotten.push(sessionId);
  }

  async close(): Promise<void> {}
}

/**
 * A fake MCP server session behind `exchange`: `tools/list`, `tools/call` of `echo` (sends a progress
 * notification first), `sample` (sends a server-initiated `sampling/createMessage` and answers once the
 * client's response arrives), `fail` (the upstream fails), `lose` (the upstream lost the session once).
 */
class FakeUpstreamSession implements UpstreamSession {
  initialized = false;
  applied: AppliedState = { revision: 0, subscriptions: [] };
  closed = false;
  closeReason: CloseReason | undefined;
  busy = false;
  lastActivity = Date.now();
  readonly received: JsonRpcMessage[] = [];
  readonly runtime: JsonRpcMessage[] = [];
  readonly headers: IncomingHttpHeaders[] = [];
  #pendingSample: { callId: JsonRpcRequest['id']; sink: ExchangeSink; done: () => void } | undefined;

  constructor(
    readonly connector: FakeConnector,
    readonly sessionId: string,
  ) {}

  async post(): Promise<ForwardResult> {
    throw new Error('the legacy front must not relay HTTP bytes');
  }
  async get(): Promise<ForwardResult> {
    throw new Error('the legacy front must not relay HTTP bytes');
  }

  async exchange(messages: JsonRpcMessage[], _version: string, headers: IncomingHttpHeaders, sink: ExchangeSink): Promise<ForwardResult> {
    this.headers.push(headers);
    if (messages.some((m) => 'method' in m && m.method === 'lose') && this.connector.loseOnce) {
      this.connector.loseOnce = false;
      this.closed = true;
      return 'lost';
    }
    this.received.push(...messages);
    const waits: Promise<void>[] = [];
    for (const m of messages) {
      if (!('method' in m)) {
        // A client response to our server-initiated request.
        const pending = this.#pendingSample;
        if (pending && m.id === 'srv-1') {
          this.#pendingSample = undefined;
          const text = 'result' in m ? String((m.result.content as { text: string }).text) : 'error';
          pending.sink.response({ jsonrpc: '2.0', id: pending.callId, result: { content: [{ type: 'text', text: `sampled: ${text}` }] } });
          pending.done();
        }
        continue;
      }
      if (!('id' in m)) continue;
      const params = (m.params ?? {}) as { name?: string; arguments?: { text?: string } };
      switch (m.method) {
        case 'tools/list':
          sink.response({ jsonrpc: '2.0', id: m.id, result: { tools: [{ name: 'echo', inputSchema: { type: 'object' } }] } });
          break;
        case 'logging/setLevel':
          sink.response({ jsonrpc: '2.0', id: m.id, result: {} });
          break;
        case 'tools/call':
          if (params.name === 'sample') {
            waits.push(
              new Promise<void>((done) => {
                this.#pendingSample = { callId: m.id, sink, done };
                sink.message({ jsonrpc: '2.0', id: 'srv-1', method: 'sampling/createMessage', params: { messages: [], maxTokens: 1 } });
              }),
            );
          } else {
            sink.message({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'echoing' } });
            sink.response({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: `Echo: ${params.arguments?.text}` }] } });
          }
          break;
        case 'fail':
          throw new UpstreamError('upstream exploded');
        default:
          sink.response({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'Method not found' } });
      }
    }
    await Promise.all(waits);
    return 'done';
  }

  async sendRuntime(messages: JsonRpcMessage[]): Promise<void> {
    this.runtime.push(...messages);
    if (messages.some((m) => 'method' in m && m.method === 'notifications/initialized')) this.initialized = true;
  }

  async close(reason: CloseReason): Promise<void> {
    this.closed = true;
    this.closeReason = reason;
  }
}

class FakeConnector implements UpstreamConnector {
  readonly kind = 'http' as const;
  attach(): void {}
  readonly sessions: FakeUpstreamSession[] = [];
  readonly initializeHeaders: IncomingHttpHeaders[] = [];
  replays = 0;
  loseOnce = false;
  refuseInitialize = false;

  async initialize(args: { sessionId: string; req: IncomingMessage; message: JsonRpcRequest }): Promise<InitializeOutcome> {
    this.initializeHeaders.push({ ...args.req.headers });
    if (this.refuseInitialize) {
      const response: JsonRpcResponse = { jsonrpc: '2.0', id: args.message.id, error: { code: -32602, message: 'Unsupported protocol version' } };
      return { response, respond: () => undefined };
    }
    const session = new FakeUpstreamSession(this, args.sessionId);
    this.sessions.push(session);
    const params = args.message.params as { protocolVersion: string };
    const response: JsonRpcResponse = {
      jsonrpc: '2.0',
      id: args.message.id,
      result: { protocolVersion: params.protocolVersion, capabilities: { tools: {}, logging: {} }, serverInfo: { name: 'fake', version: '1.0.0' } },
    };
    return { response, session, respond: (res: ServerResponse, h: OutgoingHttpHeaders) => res.writeHead(500, h).end() };
  }

  async replay(args: { sessionId: string; record: SessionRecord }): Promise<UpstreamSession> {
    this.replays++;
    const session = new FakeUpstreamSession(this, args.sessionId);
    session.initialized = true;
    session.applied = { revision: args.record.revision, subscriptions: [...args.record.subscriptions] };
    this.sessions.push(session);
    return session;
  }

  async close(): Promise<void> {}
}

// ------------------------------------------------------------------ harness

interface Cluster {
  replicas: TestProxy[];
  connectors: FakeConnector[];
  streams: ObservedStreams;
  router: RouterLog;
  store: MemorySessionStore;
}

/** `n` proxies (replicas) sharing a store, a bus and streams; each has its router double, all logging to one {@link RouterLog}. */
async function cluster(n = 2, extra: { keepAliveMs?: number; allowedOrigins?: string[]; idleTimeoutMs?: number } = {}): Promise<Cluster> {
  const store = new MemorySessionStore();
  const bus = new MemoryMessageBus();
  const streams = new ObservedStreams();
  const router = new RouterLog();
  const connectors: FakeConnector[] = [];
  const replicas: TestProxy[] = [];
  for (let i = 0; i < n; i++) {
    const connector = new FakeConnector();
    connectors.push(connector);
    replicas.push(
      await startTestProxy({
        affinity: 'replay',
        store: shared(store),
        bus: shared(bus),
        upstream: connector,
        streams: shared(streams),
        router: new FakeRouter(`replica${i}`, router),
        legacySse: { ssePath: '/sse', messagePath: '/message', ...(extra.keepAliveMs ? { keepAliveMs: extra.keepAliveMs } : {}) },
        ...(extra.allowedOrigins ? { allowedOrigins: extra.allowedOrigins } : {}),
        ...(extra.idleTimeoutMs ? { idleTimeoutMs: extra.idleTimeoutMs } : {}),
      }),
    );
  }
  return { replicas, connectors, streams, router, store };
}

/** The same store, bus or streams for one more replica, whose `close()` leaves them open for the others. */
function shared<T extends object>(target: T): T {
  return new Proxy(target, {
    get(target, prop, receiver) {
      if (prop === 'close') return async () => undefined;
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

const origin = (tp: TestProxy) => tp.url.replace(/\/mcp$/, '');

/** An open SSE stream read with eventsource-parser (the SDK's parser). */
interface OpenStream {
  status: number;
  headers: http.IncomingHttpHeaders;
  events: SseEvent[];
  raw: () => string;
  /** Resolves with the first event (after those already seen) that matches. */
  next(match: (e: SseEvent) => boolean, timeoutMs?: number): Promise<SseEvent>;
  ended: Promise<void>;
  close(): void;
}

function openSse(url: string, headers: Record<string, string> = {}): Promise<OpenStream> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      const events: SseEvent[] = [];
      const parser = createParser({ onEvent: (e) => events.push(e) });
      let raw = '';
      const waiters = new Set<() => void>();
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        raw += chunk;
        parser.feed(chunk);
        for (const w of [...waiters]) w();
      });
      const ended = new Promise<void>((r) => {
        res.once('close', r);
        res.once('error', () => r());
      });
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        events,
        raw: () => raw,
        ended,
        close: () => req.destroy(),
        next: (match, timeoutMs = 5_000) =>
          new Promise<SseEvent>((ok, fail) => {
            const check = () => {
              const hit = events.find(match);
              if (hit) {
                waiters.delete(check);
                clearTimeout(timer);
                ok(hit);
              }
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              fail(new Error(`no matching SSE event within ${timeoutMs} ms; got:\n${raw}`));
            }, timeoutMs);
            waiters.add(check);
            check();
          }),
      });
    });
    req.once('error', reject);
  });
}

async function postMessage(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}

const INIT = (id: number | string = 0, protocolVersion = '2024-11-05') => ({
  jsonrpc: '2.0',
  id,
  method: 'initialize',
  params: { protocolVersion, capabilities: { sampling: {} }, clientInfo: { name: 'legacy-test', version: '1.0.0' } },
});

const isResponseTo = (id: unknown) => (e: SseEvent) => e.event === 'message' && e.data !== '' && (JSON.parse(e.data) as { id?: unknown; method?: unknown }).id === id && !('method' in JSON.parse(e.data));

/** Opens a stream on `sseOn`, returns the announced endpoint resolved against `postTo`. */
async function connect(sseOn: TestProxy, postTo: TestProxy = sseOn, headers: Record<string, string> = {}) {
  const stream = await openSse(`${origin(sseOn)}/sse`, headers);
  const endpointEvent = await stream.next((e) => e.event === 'endpoint');
  const endpoint = endpointEvent.data;
  const sid = new URL(endpoint, 'http://x').searchParams.get('sessionId')!;
  return { stream, endpoint, sid, messageUrl: `${origin(postTo)}${endpoint}` };
}

async function initialized(c: { stream: OpenStream; messageUrl: string }, headers: Record<string, string> = {}) {
  expect((await postMessage(c.messageUrl, INIT(0), headers)).status).toBe(202);
  await c.stream.next(isResponseTo(0));
  expect((await postMessage(c.messageUrl, { jsonrpc: '2.0', method: 'notifications/initialized' }, headers)).status).toBe(202);
}

// ------------------------------------------------------------------ tests

describe('legacy HTTP+SSE front: the SSE endpoint', () => {
  it('answers GET /sse with text/event-stream and an endpoint event naming a fresh session id bound to the principal', async () => {
    const { replicas } = await cluster(1);
    const c = await connect(replicas[0]!, replicas[0]!, { authorization: 'Bearer alice' });
    expect(c.stream.status).toBe(200);
    expect(c.stream.headers['content-type']).toBe('text/event-stream');
    expect(c.stream.headers['cache-control']).toContain('no-cache');
    // The first event is the endpoint: a relative URL, as SDK 1.x SSEServerTransport sends it.
    expect(c.stream.events[0]!.event).toBe('endpoint');
    expect(c.endpoint).toMatch(/^\/message\?sessionId=[A-Za-z0-9_-]{43}$/);
    const codec = new SessionIdCodec(SECRET);
    expect(codec.verify(c.sid, 'Bearer alice')).toBeDefined();
    expect(codec.verify(c.sid, 'Bearer mallory')).toBeUndefined();
    const other = await connect(replicas[0]!, replicas[0]!, { authorization: 'Bearer alice' });
    expect(other.sid).not.toBe(c.sid);
    c.stream.close();
    other.stream.close();
  });

  it('refuses GET without text/event-stream (406), other methods (405) and a foreign Origin (403)', async () => {
    const { replicas } = await cluster(1, { allowedOrigins: ['http://good.example'] });
    const base = origin(replicas[0]!);
    expect((await fetch(`${base}/sse`, { headers: { accept: 'application/json' } })).status).toBe(406);
    const del = await fetch(`${base}/sse`, { method: 'DELETE' });
    expect(del.status).toBe(405);
    expect(del.headers.get('allow')).toBe('GET');
    const get = await fetch(`${base}/message?sessionId=x`);
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    expect((await fetch(`${base}/sse`, { headers: { accept: 'text/event-stream', origin: 'http://evil.example' } })).status).toBe(403);
    expect((await postMessage(`${base}/message?sessionId=x`, INIT(), { origin: 'http://evil.example' })).status).toBe(403);
    const allowed = await openSse(`${base}/sse`, { origin: 'http://good.example' });
    expect(allowed.status).toBe(200);
    allowed.close();
  });

  it('sends keep-alive comments on an idle stream', async () => {
    const { replicas } = await cluster(1, { keepAliveMs: 50 });
    const c = await connect(replicas[0]!);
    expect(await pollUntil(() => c.stream.raw().includes(': keep-alive'), 3_000)).toBe(true);
    c.stream.close();
  });
});

describe('legacy HTTP+SSE front: messages', () => {
  it('initialize creates the record with the negotiated version and its response arrives on the stream as event: message', async () => {
    const { replicas, store, connectors, streams } = await cluster(1);
    const c = await connect(replicas[0]!);
    const r = await postMessage(c.messageUrl, INIT(7, '2025-06-18'));
    expect(r).toEqual({ status: 202, text: 'Accepted' });
    const ev = await c.stream.next(isResponseTo(7));
    expect(ev.event).toBe('message');
    expect(ev.id).toMatch(new RegExp(`^${c.sid}\\.`));
    expect(JSON.parse(ev.data).result.serverInfo.name).toBe('fake');
    const record = await store.load(c.sid);
    expect(record?.protocolVersion).toBe('2025-06-18');
    expect(record?.initializeParams).toMatchObject({ clientInfo: { name: 'legacy-test' } });
    // The Streamable HTTP upstream needs both media types; a legacy client sends neither.
    expect(connectors[0]!.initializeHeaders[0]!.accept).toBe('application/json, text/event-stream');
    expect(streams.messages(c.sid)).toHaveLength(1);
    // A session id is initialized once.
    const again = await postMessage(c.messageUrl, INIT(8));
    expect(again.status).toBe(400);
    c.stream.close();
  });

  it('an initialize the upstream refuses creates no session; its error goes to the stream', async () => {
    const { replicas, store, connectors } = await cluster(1);
    connectors[0]!.refuseInitialize = true;
    const c = await connect(replicas[0]!);
    expect((await postMessage(c.messageUrl, INIT(1))).status).toBe(202);
    const ev = await c.stream.next(isResponseTo(1));
    expect(JSON.parse(ev.data).error.code).toBe(-32602);
    expect(await store.load(c.sid)).toBeUndefined();
    c.stream.close();
  });

  it('POSTs landing on another replica go through its own upstream session (handshake replay) and their messages reach the stream holder', async () => {
    const { replicas, connectors } = await cluster(2);
    const [a, b] = replicas as [TestProxy, TestProxy];
    const c = await connect(a, b);
    const urls = [`${origin(a)}${c.endpoint}`, `${origin(b)}${c.endpoint}`];
    // initialize on B, notifications/initialized on A, then alternate, as a round-robin balancer would.
    expect((await postMessage(urls[1]!, INIT(0))).status).toBe(202);
    await c.stream.next(isResponseTo(0));
    expect(connectors[1]!.sessions).toHaveLength(1);
    expect(connectors[1]!.replays).toBe(0);
    expect((await postMessage(urls[0]!, { jsonrpc: '2.0', method: 'notifications/initialized' })).status).toBe(202);
    // A opened its own upstream session by replay (for the POST, and to keep one open while it holds the stream).
    expect(connectors[0]!.replays).toBe(1);
    for (let i = 0; i < 4; i++) {
      const id = 100 + i;
      const r = await postMessage(urls[i % 2]!, { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { text: `hi ${i}` } } });
      expect(r.status).toBe(202);
      const ev = await c.stream.next(isResponseTo(id));
      expect(JSON.parse(ev.data).result.content[0].text).toBe(`Echo: hi ${i}`);
    }
    // Still one upstream session per replica; the related server message came before each response.
    expect(connectors[0]!.replays).toBe(1);
    expect(connectors[1]!.replays).toBe(0);
    const messages = c.stream.events.filter((e) => e.event === 'message').map((e) => JSON.parse(e.data) as { id?: number; method?: string });
    const firstLog = messages.findIndex((m) => m.method === 'notifications/message');
    expect(firstLog).toBeGreaterThan(-1);
    expect(firstLog).toBeLessThan(messages.findIndex((m) => m.id === 100));
    // The replay on A sent `notifications/initialized` already: the client's is not sent twice there.
    // B's upstream session never got the client's, so the proxy sent one before B's first request.
    const initializedIn = (list: JsonRpcMessage[]) => list.filter((m) => 'method' in m && m.method === 'notifications/initialized').length;
    const onA = connectors[0]!.sessions[0]!;
    const onB = connectors[1]!.sessions[0]!;
    expect(initializedIn(onA.received) + initializedIn(onA.runtime)).toBe(0);
    expect(initializedIn(onB.received)).toBe(0);
    expect(initializedIn(onB.runtime)).toBe(1);
    c.stream.close();
  });

  it('logging/setLevel is recorded for replay by other replicas', async () => {
    const { replicas, store } = await cluster(2);
    const [a, b] = replicas as [TestProxy, TestProxy];
    const c = await connect(a, b);
    await initialized(c);
    expect((await postMessage(c.messageUrl, { jsonrpc: '2.0', id: 5, method: 'logging/setLevel', params: { level: 'debug' } })).status).toBe(202);
    await c.stream.next(isResponseTo(5));
    expect((await store.load(c.sid))?.loggingLevel).toBe('debug');
    c.stream.close();
  });

  it('client responses go through the router: claimed ones are not forwarded, unknown ones reach the upstream session', async () => {
    const { replicas, router, connectors } = await cluster(1);
    const c = await connect(replicas[0]!);
    await initialized(c);
    // A response the router routes to another replica: 202, nothing forwarded here.
    router.remote.add('elsewhere-1');
    const claimed = await postMessage(c.messageUrl, { jsonrpc: '2.0', id: 'elsewhere-1', result: {} });
    expect(claimed.status).toBe(202);
    expect(router.replies.map((r) => [r.sessionId, r.response.id])).toEqual([[c.sid, 'elsewhere-1']]);
    const up = connectors[0]!.sessions[0]!;
    expect(up.received.some((m) => !('method' in m))).toBe(false);
    // A server-initiated request during a tool call: the client's answer (an `unknown` id for the router) reaches the upstream.
    expect((await postMessage(c.messageUrl, { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'sample' } })).status).toBe(202);
    const request = await c.stream.next((e) => e.data.includes('sampling/createMessage'));
    expect(JSON.parse(request.data).id).toBe('srv-1');
    const answer = { jsonrpc: '2.0', id: 'srv-1', result: { role: 'assistant', content: { type: 'text', text: 'forty-two' }, model: 'm' } };
    expect((await postMessage(c.messageUrl, answer)).status).toBe(202);
    const result = await c.stream.next(isResponseTo(9));
    expect(JSON.parse(result.data).result.content[0].text).toBe('sampled: forty-two');
    expect(router.replies.map((r) => r.response.id)).toEqual(['elsewhere-1', 'srv-1']);
    c.stream.close();
  });

  it('an upstream failure becomes a JSON-RPC error for the request on the stream; a lost upstream session is replayed and retried', async () => {
    const { replicas, connectors } = await cluster(1);
    const c = await connect(replicas[0]!);
    await initialized(c);
    expect((await postMessage(c.messageUrl, { jsonrpc: '2.0', id: 11, method: 'fail' })).status).toBe(202);
    const failed = JSON.parse((await c.stream.next(isResponseTo(11))).data);
    expect(failed.error).toEqual({ code: -32603, message: 'Bad Gateway: upstream exploded' });
    connectors[0]!.loseOnce = true;
    expect((await postMessage(c.messageUrl, { jsonrpc: '2.0', id: 12, method: 'lose' })).status).toBe(202);
    const retried = JSON.parse((await c.stream.next(isResponseTo(12))).data);
    expect(retried.error.code).toBe(-32601); // answered by the replayed upstream session
    expect(connectors[0]!.replays).toBe(1);
    c.stream.close();
  });

  it('answers bad requests on the message endpoint with the documented status and creates nothing', async () => {
    const { replicas, store } = await cluster(1);
    const tp = replicas[0]!;
    const c = await connect(tp, tp, { authorization: 'Bearer alice' });
    const alice = { authorization: 'Bearer alice' };
    const base = origin(tp);
    const tools = { jsonrpc: '2.0', id: 1, method: 'tools/list' };
    expect((await postMessage(`${base}/message`, tools, alice)).status).toBe(400); // no sessionId
    const forged = `${c.sid.slice(0, 20)}${c.sid[20] === 'A' ? 'B' : 'A'}${c.sid.slice(21)}`;
    expect((await postMessage(`${base}/message?sessionId=${forged}`, tools, alice)).status).toBe(404);
    expect((await postMessage(c.messageUrl, tools, { authorization: 'Bearer mallory' })).status).toBe(404); // other principal
    expect((await postMessage(c.messageUrl, INIT(), { authorization: 'Bearer mallory' })).status).toBe(404);
    const notYet = await postMessage(c.messageUrl, tools, alice); // never initialized
    expect(notYet.status).toBe(404);
    expect(JSON.parse(notYet.text).error.code).toBe(-32001);
    const bad = await postMessage(c.messageUrl, '{"jsonrpc":', alice);
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.text).error.code).toBe(-32700);
    expect((await postMessage(c.messageUrl, { hello: 'world' }, alice)).status).toBe(400);
    expect((await postMessage(c.messageUrl, [INIT()], alice)).status).toBe(400);
    expect((await postMessage(c.messageUrl, { jsonrpc: '2.0', id: 'mcp-migrate:x', method: 'ping' }, alice)).status).toBe(400);
    expect((await postMessage(c.messageUrl, INIT(), { ...alice, 'content-type': 'text/plain' })).status).toBe(415);
    expect((await postMessage(c.messageUrl, INIT(), { ...alice, 'mcp-protocol-version': '1999-01-01' })).status).toBe(400);
    expect(await store.load(c.sid)).toBeUndefined();
    await initialized(c, alice);
    // Batches only where the negotiated version allows them (2024-11-05 here: allowed).
    expect((await postMessage(c.messageUrl, [tools, { jsonrpc: '2.0', id: 2, method: 'tools/list' }], alice)).status).toBe(202);
    await c.stream.next(isResponseTo(2));
    c.stream.close();
  });
});

describe('legacy HTTP+SSE front: session lifetime', () => {
  it('closing the SSE stream ends the session on every replica', async () => {
    const { replicas, store, streams, router, connectors } = await cluster(2);
    const [a, b] = replicas as [TestProxy, TestProxy];
    const c = await connect(a, b);
    await initialized(c);
    expect((await postMessage(`${origin(a)}${c.endpoint}`, { jsonrpc: '2.0', id: 3, method: 'tools/list' })).status).toBe(202);
    await c.stream.next(isResponseTo(3));
    c.stream.close();
    expect(await pollUntil(async () => (await store.load(c.sid)) === undefined)).toBe(true);
    expect(await pollUntil(() => streams.deleted.includes(c.sid))).toBe(true);
    expect(router.forgotten).toContain(c.sid);
    // Both replicas closed their upstream sessions.
    expect(await pollUntil(() => connectors.every((k) => k.sessions.every((s) => s.closed)))).toBe(true);
    expect((await postMessage(c.messageUrl, { jsonrpc: '2.0', id: 4, method: 'tools/list' })).status).toBe(404);
    expect(streams.streamIds(c.sid)).toEqual([]);
  });

  it('the replica holding the stream keeps an upstream session open (never reaped as idle) until the stream closes', async () => {
    const { replicas, connectors } = await cluster(2, { idleTimeoutMs: 300 });
    const [a, b] = replicas as [TestProxy, TestProxy];
    const c = await connect(a, b);
    await initialized(c);
    expect(await pollUntil(() => connectors[0]!.replays === 1)).toBe(true);
    const held = connectors[0]!.sessions[0]!;
    // B's upstream session, unused, is reaped; A's is held.
    expect(await pollUntil(() => connectors[1]!.sessions[0]!.closeReason === 'idle', 5_000)).toBe(true);
    expect(held.closed).toBe(false);
    c.stream.close();
    expect(await pollUntil(() => held.closed)).toBe(true);
  });

  it('a graceful shutdown ends the stream with retry: and keeps the session; Last-Event-ID resumes it on another replica', async () => {
    const { replicas, store } = await cluster(2);
    const [a, b] = replicas as [TestProxy, TestProxy];
    const c = await connect(a, b);
    await initialized(c);
    expect((await postMessage(c.messageUrl, { jsonrpc: '2.0', id: 20, method: 'tools/list' })).status).toBe(202);
    const seen = await c.stream.next(isResponseTo(20));
    await a.proxy.shutdown({ timeoutMs: 2_000 });
    await c.stream.ended;
    expect(c.stream.raw()).toMatch(/retry: 1000\n\n$/);
    expect(await store.load(c.sid)).toBeDefined();
    // Messages produced while no stream was open are not lost: the resuming client gets them.
    expect((await postMessage(c.messageUrl, { jsonrpc: '2.0', id: 21, method: 'tools/list' })).status).toBe(202);
    const resumed = await openSse(`${origin(b)}/sse`, { 'last-event-id': seen.id! });
    expect((await resumed.next((e) => e.event === 'endpoint')).data).toBe(c.endpoint);
    await resumed.next(isResponseTo(21));
    expect(resumed.events.some(isResponseTo(20))).toBe(false);
    // A Last-Event-ID of another principal, or forged, starts a new session instead.
    const other = await openSse(`${origin(b)}/sse`, { 'last-event-id': seen.id!, authorization: 'Bearer mallory' });
    expect((await other.next((e) => e.event === 'endpoint')).data).not.toBe(c.endpoint);
    other.close();
    resumed.close();
  });
});

describe('legacy HTTP+SSE front: one stream per session', () => {
  it('a client resuming on another replica supersedes the open stream without ending the session; the endpoint id replays from the start', async () => {
    const { replicas, store, streams } = await cluster(2);
    const [a, b] = replicas as [TestProxy, TestProxy];
    const c = await connect(a, b);
    const endpointId = c.stream.events[0]!.id!;
    expect(endpointId).toBe(`${c.sid}.g_0`);
    expect((await postMessage(c.messageUrl, INIT(0))).status).toBe(202);
    await c.stream.next(isResponseTo(0));
    // Resume from the endpoint event's id while A still holds the stream.
    const resumed = await openSse(`${origin(b)}/sse`, { 'last-event-id': endpointId });
    expect((await resumed.next((e) => e.event === 'endpoint')).data).toBe(c.endpoint);
    await resumed.next(isResponseTo(0)); // replayed
    await c.stream.ended; // A ended its stream: superseded
    await new Promise((r) => setTimeout(r, 100));
    expect(await store.load(c.sid)).toBeDefined();
    expect(streams.deleted).not.toContain(c.sid);
    // Later messages go to the new stream only.
    expect((await postMessage(c.messageUrl, { jsonrpc: '2.0', id: 30, method: 'tools/list' })).status).toBe(202);
    await resumed.next(isResponseTo(30));
    expect(c.stream.events.some(isResponseTo(30))).toBe(false);
    // The client closing the new stream ends the session.
    resumed.close();
    expect(await pollUntil(async () => (await store.load(c.sid)) === undefined)).toBe(true);
  });
});

describe('legacy HTTP+SSE front with the SDK client', () => {
  it('SSEClientTransport + Client work through two replicas (stream on one, every POST on the other)', async () => {
    const { replicas, connectors } = await cluster(2);
    const [a, b] = replicas as [TestProxy, TestProxy];
    // POSTs go to B whatever the endpoint event says: as a balancer would route them.
    const fetchToB: typeof fetch = (input, init) => {
      const url = new URL(input instanceof Request ? input.url : String(input));
      if (url.pathname === '/message') url.port = new URL(b.url).port;
      return fetch(url, init);
    };
    const client = new Client({ name: 'sdk-legacy', version: '1.0.0' });
    const transport = new SSEClientTransport(new URL(`${origin(a)}/sse`), { fetch: fetchToB });
    await client.connect(transport);
    const tools = await client.listTools();
    expect(tools.tools.map((t) => t.name)).toEqual(['echo']);
    const result = await client.callTool({ name: 'echo', arguments: { text: 'sdk' } });
    expect(result.content).toEqual([{ type: 'text', text: 'Echo: sdk' }]);
    expect(connectors[1]!.sessions[0]!.received.some((m) => 'method' in m && m.method === 'tools/call')).toBe(true);
    // A, holding the stream, keeps an upstream session of its own open (for the server's unsolicited
    // messages) but served no request.
    expect(await pollUntil(() => connectors[0]!.replays === 1)).toBe(true);
    expect(connectors[0]!.sessions.flatMap((u) => u.received)).toEqual([]);
    await client.close();
  });
});
