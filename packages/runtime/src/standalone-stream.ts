import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { STANDALONE_STREAM, type SessionStreams, type StreamEvent, type StreamFollow } from './session-streams.js';

/**
 * Serving a client's GET from a session's shared streams ({@link SessionStreams}): the one
 * implementation used by `mcp-migrate proxy` (`src/proxy/fronts/streamable-http.ts`) and by
 * `SessionTransportRegistry` in servers rewritten by `mcp-migrate apply`.
 *
 * Spec 2025-03-26 … 2025-11-25 `basic/transports.mdx`: §Listening for Messages from the Server (the
 * standalone GET stream), §Multiple Connections (one standalone stream per session: a newer GET, on
 * any replica, ends the older one, so a reconnect is never refused and no message goes out twice),
 * §Resumability and Redelivery (`id:` on every event, `Last-Event-ID` resumes the stream the id
 * belongs to; 2025-11-25 adds the priming event: an event id and `retry:` before any message).
 */

/** An SSE comment line, used as keep-alive so idle streams survive load balancer read timeouts. */
export const SSE_KEEPALIVE = ': keep-alive\n\n';

/** Response headers of an SSE stream written by the runtime (no buffering in nginx: `x-accel-buffering: no`). */
export const SSE_HEADERS: Readonly<OutgoingHttpHeaders> = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};

/** One SSE event carrying a JSON-RPC message (`event: message`, one `data:` line of JSON). */
export function sseMessage(message: unknown, id?: string): string {
  return `${id !== undefined ? `id: ${id}\n` : ''}event: message\ndata: ${JSON.stringify(message)}\n\n`;
}

/** A priming event (spec 2025-11-25 §Resumability, SEP-1699): an event id and a reconnection delay, no data. */
export function ssePriming(id: string, retryMs: number): string {
  return `id: ${id}\nretry: ${retryMs}\ndata: \n\n`;
}

/** The first protocol version whose clients get a priming event on the standalone stream. */
export const PRIMING_SINCE = '2025-11-25';

export interface SessionStreamRequest {
  streams: SessionStreams;
  sessionId: string;
  /** The session's negotiated protocol version: 2025-11-25 and later get a priming event. */
  protocolVersion: string;
  /**
   * The request's `Last-Event-ID`. One of the session's stream event ids resumes that stream after
   * it (a POST stream ends after its last event); absent, or not one of ours, opens the standalone
   * stream from the messages no client stream has taken yet.
   */
  lastEventId?: string | undefined;
  /** Interval of keep-alive comments, ms. Default 15,000. */
  keepAliveMs?: number;
  /** `retry:` of the priming event, ms. Default 1,000. */
  retryMs?: number;
  /** Called for each event written to the client (`live` false for stored events replayed at the start). */
  onEvent?: (event: StreamEvent, live: boolean) => void;
  /** Called once the stream is open (headers sent); the function it returns runs when the stream ends. */
  onOpen?: (standalone: boolean) => (() => void) | void;
}

/** Where the SSE bytes go: a Node `ServerResponse` or a web `ReadableStream`. */
interface SseSink {
  /** Sends status 200, the SSE headers and `first` (may be empty: then the headers are flushed alone). */
  open(first: string): void;
  write(chunk: string): void;
  end(): void;
  readonly closed: boolean;
  /** Resolves when the client went away or {@link end} was called. */
  readonly done: Promise<void>;
}

/**
 * Serves a GET on a Node response from `streams.follow` (see the module comment): the standalone
 * stream (`exclusive`, starting with undelivered messages) or, with a `Last-Event-ID` of one of the
 * session's streams, that stream after it. Resolves when the stream ends (client gone, superseded
 * by a newer GET, session deleted, POST stream complete).
 * @throws what `streams.follow` throws (`SessionStoreUnavailableError`), before anything is written.
 */
export async function serveSessionStream(res: ServerResponse, request: SessionStreamRequest): Promise<void> {
  const alive = () => !res.writableEnded && !res.destroyed;
  const sink: SseSink = {
    open(first) {
      res.writeHead(200, SSE_HEADERS);
      if (first) res.write(first);
      else res.flushHeaders();
    },
    write(chunk) {
      if (alive()) res.write(chunk);
    },
    end() {
      if (alive()) res.end();
    },
    get closed() {
      return res.destroyed;
    },
    done: new Promise<void>((resolve) => {
      if (res.destroyed || res.writableFinished) resolve();
      else res.once('close', resolve);
    }),
  };
  const running = await start(sink, request);
  await running?.finished;
}

/**
 * Web-standard variant of {@link serveSessionStream}: resolves to the SSE `Response` once the follow
 * is active; the stream ends when the client cancels the body or `signal` aborts.
 * @throws as {@link serveSessionStream}.
 */
export async function sessionStreamResponse(request: SessionStreamRequest, signal?: AbortSignal): Promise<Response> {
  const encoder = new TextEncoder();
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let closed = false;
  let onDone!: () => void;
  const done = new Promise<void>((resolve) => (onDone = resolve));
  const finish = () => {
    closed = true;
    onDone();
  };
  const body = new ReadableStream<Uint8Array>({
    start: (c) => {
      controller = c;
    },
    cancel: finish,
  });
  signal?.addEventListener('abort', () => {
    if (!closed) {
      finish();
      controller.close();
    }
  });
  const sink: SseSink = {
    open(first) {
      if (first) controller.enqueue(encoder.encode(first));
    },
    write(chunk) {
      if (!closed) controller.enqueue(encoder.encode(chunk));
    },
    end() {
      if (closed) return;
      finish();
      controller.close();
    },
    get closed() {
      return closed;
    },
    done,
  };
  await start(sink, request);
  return new Response(body, { status: 200, headers: SSE_HEADERS as Record<string, string> });
}

/** Follows the stream and opens the sink; resolves (undefined if the client was already gone) once open. */
async function start(sink: SseSink, request: SessionStreamRequest): Promise<{ finished: Promise<void> } | undefined> {
  const { streams, lastEventId } = request;
  const resumed = lastEventId !== undefined ? streams.streamOf(lastEventId) : undefined;
  const streamId = resumed ?? STANDALONE_STREAM;
  const standalone = streamId === STANDALONE_STREAM;
  let open = false;
  let queued: string[] = [];
  let ended = false;
  const end = () => {
    ended = true;
    if (open) sink.end();
  };
  const onEvent = (event: StreamEvent, live: boolean) => {
    const chunk = sseMessage(event.message, event.eventId);
    if (!open) queued.push(chunk);
    else if (!sink.closed) {
      sink.write(chunk);
      request.onEvent?.(event, live);
    }
    if (event.end && !standalone) end();
  };
  const follow: StreamFollow = await streams.follow(
    request.sessionId,
    streamId,
    {
      ...(resumed !== undefined ? { after: lastEventId } : { undelivered: true }),
      ...(standalone ? { exclusive: true } : {}),
      onClosed: end,
    },
    onEvent,
  );
  if (sink.closed) {
    await follow.close();
    return undefined;
  }
  sink.open(standalone && request.protocolVersion >= PRIMING_SINCE ? ssePriming(follow.cursor, request.retryMs ?? 1_000) : '');
  open = true;
  if (queued.length > 0) sink.write(queued.join(''));
  queued = [];
  if (ended || (!standalone && follow.ended)) {
    end();
    await follow.close();
    return { finished: Promise.resolve() };
  }
  const keepAlive = setInterval(() => {
    if (!sink.closed) sink.write(SSE_KEEPALIVE);
  }, request.keepAliveMs ?? 15_000);
  keepAlive.unref();
  const release = request.onOpen?.(standalone);
  const finished = sink.done.then(async () => {
    clearInterval(keepAlive);
    release?.();
    await follow.close();
  });
  return { finished };
}
