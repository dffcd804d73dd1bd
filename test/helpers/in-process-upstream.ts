/**
 * The in-process upstream of the 2026-07-28 front's unit tests: a connector whose sessions are SDK 1.x
 * `Server`s in this process, with message-level `exchange` (related messages to the exchange's sink,
 * unrelated ones to the session's standalone stream 'g', server-to-client requests rewritten by the
 * router). The tests pair it with the runtime's real in-memory session streams and bus router; the HTTP
 * upstream's exchange is exercised by the integration tests against server-everything.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  CallToolRequestSchema,
  CreateMessageResultSchema,
  ElicitResultSchema,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListRootsResultSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type JSONRPCMessage,
} from '@modelcontextprotocol/sdk/types.js';
import { handshakeReplay } from '@mcp-migrate/runtime';
import { idKey, isRequest, isResponse, type JsonRpcId, type JsonRpcMessage, type JsonRpcRequest, type JsonRpcResponse } from '@mcp-migrate/runtime';
import type { SessionRecord } from '@mcp-migrate/runtime';
import type { ServerRequestRouter } from '@mcp-migrate/runtime';
import { STANDALONE_STREAM, type SessionStreams } from '@mcp-migrate/runtime';
import type { AppliedState, ClientPost, CloseReason, ExchangeSink, ForwardResult, InitializeOutcome, UpstreamConnector, UpstreamSession } from '../../src/proxy/upstreams/upstream.js';

/**
 * The upstream MCP server of the unit tests (SDK 1.x low-level `Server`, one per session, like
 * server-everything): tools that elicit, sample, list roots, report progress, log, change the tool list
 * and touch subscribed resources.
 */
export function testServer(): Server {
  const server = new Server(
    { name: 'modern-test-upstream', version: '1.2.3' },
    {
      capabilities: { tools: { listChanged: true }, resources: { subscribe: true, listChanged: true }, prompts: {}, logging: {} },
      instructions: 'Unit-test upstream.',
    },
  );
  let added = 0;
  const subscribed = new Set<string>();
  const text = (t: string) => ({ content: [{ type: 'text' as const, text: t }] });
  type Extra = { sendRequest: (request: { method: string; params?: Record<string, unknown> }, schema: typeof ElicitResultSchema) => Promise<unknown> };
  const elicit = async (extra: Extra, message: string) =>
    (await extra.sendRequest(
      { method: 'elicitation/create', params: { mode: 'form', message, requestedSchema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] } } },
      ElicitResultSchema,
    )) as { action: string; content?: Record<string, unknown> };
  const tools = ['echo', 'whoami', 'ask', 'ask-twice', 'sample', 'roots', 'progress', 'log', 'add-tool', 'touch'];
  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: [...tools, ...Array.from({ length: added }, (_, i) => `added-${i + 1}`)].map((name) => ({ name, inputSchema: { type: 'object' as const } })),
  }));
  server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
    const args = (req.params.arguments ?? {}) as Record<string, unknown>;
    switch (req.params.name) {
      case 'echo':
        return text(String(args.message));
      case 'whoami':
        return text(JSON.stringify(server.getClientCapabilities() ?? null));
      case 'ask': {
        const r = await elicit(extra, 'Your name?');
        return text(r.action === 'accept' ? `hello ${String(r.content?.name)}` : `no answer (${r.action})`);
      }
      case 'ask-twice': {
        const a = await elicit(extra, 'First name?');
        const b = await elicit(extra, 'Last name?');
        return text(`hello ${String(a.content?.name)} ${String(b.content?.name)}`);
      }
      case 'sample': {
        const r = await extra.sendRequest(
          { method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: 'hi?' } }], maxTokens: 10 } },
          CreateMessageResultSchema,
        );
        return text(`model said ${(r.content as { text?: string }).text}`);
      }
      case 'roots': {
        const r = await extra.sendRequest({ method: 'roots/list' }, ListRootsResultSchema);
        return text(r.roots.map((x) => x.uri).join(','));
      }
      case 'progress': {
        const token = extra._meta?.progressToken;
        if (token !== undefined) {
          for (let i = 1; i <= 2; i++) await extra.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: 2 } });
        }
        return text('done');
      }
      case 'log':
        await extra.sendNotification({ method: 'notifications/message', params: { level: 'info', data: 'info line' } });
        await extra.sendNotification({ method: 'notifications/message', params: { level: 'error', data: 'error line' } });
        return text('logged');
      case 'add-tool':
        added++;
        await server.sendToolListChanged();
        return text(`added-${added}`);
      case 'touch':
        for (const uri of subscribed) await server.sendResourceUpdated({ uri });
        return text([...subscribed].join(','));
      default:
        throw new McpError(-32602, `Tool ${req.params.name} not found`);
    }
  });
  server.setRequestHandler(ListResourcesRequestSchema, async () => ({ resources: [{ uri: 'test://static', name: 'static' }] }));
  server.setRequestHandler(ReadResourceRequestSchema, async (req) => {
    if (req.params.uri !== 'test://static') throw new McpError(-32002, 'Resource not found', { uri: req.params.uri });
    return { contents: [{ uri: 'test://static', text: 'static text' }] };
  });
  server.setRequestHandler(SubscribeRequestSchema, async (req) => {
    subscribed.add(req.params.uri);
    return {};
  });
  server.setRequestHandler(UnsubscribeRequestSchema, async (req) => {
    subscribed.delete(req.params.uri);
    return {};
  });
  server.setRequestHandler(ListPromptsRequestSchema, async () => ({ prompts: [{ name: 'greet' }] }));
  server.setRequestHandler(GetPromptRequestSchema, async (req, extra) => {
    const r = await elicit(extra, 'Whom to greet?');
    return { messages: [{ role: 'user', content: { type: 'text', text: `greet ${String(r.content?.name)} (${req.params.name})` } }] };
  });
  server.setRequestHandler(SetLevelRequestSchema, async () => ({}));
  return server;
}

/** Counters shared by the sessions of one {@link InProcessConnector}. */
export interface InProcessStats {
  initialized: number;
  /** Request ids the upstream received from clients (to show clients' ids never reach it). */
  requestIds: JsonRpcId[];
}

/**
 * {@link UpstreamConnector} whose sessions are in-process SDK servers. Every replica gets its own
 * connector (its own upstream sessions), as real replicas do.
 */
export class InProcessConnector implements UpstreamConnector {
  readonly kind = 'stdio' as const;
  readonly stats: InProcessStats = { initialized: 0, requestIds: [] };
  readonly sessions = new Set<InProcessSession>();

  constructor(
    public streams: SessionStreams,
    public router: ServerRequestRouter,
    readonly factory: () => Server = testServer,
  ) {}

  /** The proxy hands every connector its streams and router (the ones the tests passed in). */
  attach(context: { streams: SessionStreams; router: ServerRequestRouter }): void {
    this.streams = context.streams;
    this.router = context.router;
  }

  /** A legacy client's own `initialize` (the side-by-side test). */
  async initialize(args: { sessionId: string; message: JsonRpcRequest }): Promise<InitializeOutcome> {
    const session = new InProcessSession(this, args.sessionId);
    await session.start();
    const response = await session.call(args.message);
    if ('result' in response) {
      session.initializeResult = response.result;
      this.sessions.add(session);
    }
    return {
      response,
      ...('result' in response ? { session } : {}),
      respond: (res, headers) => {
        const body = JSON.stringify(response);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers });
        res.end(body);
      },
    };
  }

  async replay(args: { sessionId: string; record: SessionRecord; req: IncomingMessage }): Promise<UpstreamSession> {
    const session = new InProcessSession(this, args.sessionId);
    await session.start();
    const [init, ...rest] = handshakeReplay(args.record);
    const response = await session.call(init as JsonRpcRequest);
    if (!('result' in response)) throw new Error(`initialize refused: ${response.error.message}`);
    session.initializeResult = response.result;
    await session.sendRuntime(rest);
    session.initialized = true;
    this.stats.initialized++;
    this.sessions.add(session);
    return session;
  }

  async close(): Promise<void> {
    for (const s of this.sessions) await s.close('shutdown');
  }
}

export class InProcessSession implements UpstreamSession, Transport {
  initialized = false;
  initializeResult: Record<string, unknown> | undefined;
  applied: AppliedState = { revision: 0, subscriptions: [] };
  onmessage?: (message: JSONRPCMessage) => void;
  onclose?: () => void;
  onerror?: (error: Error) => void;
  #closed = false;
  #inflight = 0;
  #lastActivity = Date.now();
  readonly #server: Server;
  /** Request id → who waits for its response. */
  readonly #waiting = new Map<string, { sink?: ExchangeSink; resolve: (r: JsonRpcResponse) => void }>();

  constructor(
    readonly connector: InProcessConnector,
    readonly sessionId: string,
  ) {
    this.#server = connector.factory();
  }

  get closed() {
    return this.#closed;
  }
  get busy() {
    return this.#inflight > 0;
  }
  get lastActivity() {
    return this.#lastActivity;
  }

  async start(): Promise<void> {
    if (!this.onmessage) await this.#server.connect(this);
  }

  /** Transport.send: a message from the server. */
  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    const m = message as JsonRpcMessage;
    if (isResponse(m)) {
      const w = m.id === null ? undefined : this.#waiting.get(idKey(m.id));
      if (w) {
        this.#waiting.delete(idKey(m.id as JsonRpcId));
        w.resolve(m);
      }
      return;
    }
    const related = options?.relatedRequestId !== undefined ? this.#waiting.get(idKey(options.relatedRequestId)) : undefined;
    let out: JsonRpcMessage = m;
    if (isRequest(m)) {
      out = this.connector.router.outgoing(this.sessionId, m, (response) => this.onmessage?.(response as JSONRPCMessage));
    }
    if (related?.sink) related.sink.message(out);
    else await this.connector.streams.append(this.sessionId, STANDALONE_STREAM, out);
  }

  call(request: JsonRpcRequest, sink?: ExchangeSink): Promise<JsonRpcResponse> {
    return new Promise((resolve) => {
      this.#waiting.set(idKey(request.id), { ...(sink ? { sink } : {}), resolve });
      this.onmessage?.(request as JSONRPCMessage);
    });
  }

  /** A legacy client's POST: JSON answers only (enough for the side-by-side test). */
  async post(p: ClientPost): Promise<ForwardResult> {
    const requests = p.messages.filter(isRequest);
    for (const m of p.messages) if (!isRequest(m)) this.onmessage?.(m as JSONRPCMessage);
    if (requests.length === 0) {
      p.res.writeHead(202).end();
      return 'done';
    }
    const responses = await Promise.all(requests.map((m) => this.call(m)));
    const body = JSON.stringify(p.batch ? responses : responses[0]);
    p.res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    p.res.end(body);
    return 'done';
  }
  async get(): Promise<ForwardResult> {
    throw new Error('not used by the modern front tests');
  }

  async exchange(messages: JsonRpcMessage[], _protocolVersion: string, _headers: IncomingHttpHeaders, sink: ExchangeSink, signal?: AbortSignal): Promise<ForwardResult> {
    if (this.#closed) return 'lost';
    this.#inflight++;
    this.#lastActivity = Date.now();
    try {
      const waits: Promise<unknown>[] = [];
      for (const m of messages) {
        if (isRequest(m)) {
          this.connector.stats.requestIds.push(m.id);
          waits.push(
            this.call(m, sink).then((r) => {
              if (!signal?.aborted) sink.response(r);
            }),
          );
          signal?.addEventListener('abort', () => this.onmessage?.({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: m.id, reason: 'client went away' } }), {
            once: true,
          });
        } else this.onmessage?.(m as JSONRPCMessage);
      }
      await Promise.race([Promise.all(waits), new Promise((r) => signal?.addEventListener('abort', r, { once: true }))]);
      return 'done';
    } finally {
      this.#inflight--;
      this.#lastActivity = Date.now();
    }
  }

  async sendRuntime(messages: JsonRpcMessage[]): Promise<void> {
    for (const m of messages) {
      if (isRequest(m)) await this.call(m);
      else this.onmessage?.(m as JSONRPCMessage);
    }
  }

  async close(_reason?: CloseReason): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.connector.router.forget(this.sessionId);
    await this.#server.close().catch(() => undefined);
  }
}
