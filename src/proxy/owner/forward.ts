import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { HOP_BY_HOP_HEADERS } from '../http/util.js';
import { rawHeader, relayResponse, requestHeaders, RESPONSE_HOP_BY_HOP, type HttpTarget } from '../http/relay.js';
import { FORWARDED_HEADER, MISDIRECTED_HEADER } from './forwarding-mac.js';
import { unansweredErrors } from './unanswered.js';

/**
 * What one forward to a session's owner came to. `down`: the owner is gone (connection refused, reset
 * before any answer on a fresh connection, or its registration expired while its answer was awaited).
 * `unreachable`: no TCP connection within the connect timeout, which a live but overloaded or cut-off
 * owner also causes (the caller asks the registry). `retry`: a reused keep-alive connection was reset
 * before any answer.
 */
export type ForwardOutcome = 'done' | 'down' | 'unreachable' | 'misdirected' | 'retry';

/** How much of a relayed POST SSE stream is kept to tell, if it breaks, which requests got no response. */
const KEPT_SSE_BYTES = 256 * 1024;

const FORWARD_DROP: ReadonlySet<string> = new Set([...HOP_BY_HOP_HEADERS, 'host', 'content-length', FORWARDED_HEADER]);

/** The client's headers minus hop-by-hop ones, with the owner's `host`, the body length and the forwarding header. */
export function forwardHeaders(headers: IncomingHttpHeaders, host: string, forwarded: string, contentLength: number | undefined): string[] {
  const extra = contentLength !== undefined ? ['content-length', String(contentLength), FORWARDED_HEADER, forwarded] : [FORWARDED_HEADER, forwarded];
  return requestHeaders(headers, host, FORWARD_DROP, extra);
}

export interface ForwardAttempt {
  target: HttpTarget;
  req: IncomingMessage;
  res: ServerResponse;
  headers: string[];
  /** The POST body as received (absent for GET and DELETE). */
  body: Buffer | undefined;
  /** Longest wait for a TCP connection to the owner, ms. */
  connectTimeoutMs: number;
  /**
   * Calls `onGone` if the owner leaves the replica registry (hung or cut off without closing its
   * sockets) while its answer is awaited; returns the function that stops watching.
   */
  watchOwner(onGone: () => void): () => void;
  /** The owner answered (its answer is being relayed). */
  onAnswer(): void;
  /** The owner's answer broke off mid-stream. */
  onBroken(): void;
}

/**
 * Sends the client's request to the owner once over the shared relay and streams the answer back (SSE
 * included, unbuffered). `mayRetry`: a reset of a reused keep-alive connection before any answer
 * resolves `retry` (nothing reached the owner), so the caller tries once more on a fresh connection.
 */
export function attemptForward(a: ForwardAttempt, mayRetry: boolean): Promise<ForwardOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    let connectTimer: NodeJS.Timeout | undefined;
    const settle = (r: ForwardOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      unwatch();
      a.res.off('close', onClientGone);
      resolve(r);
    };
    const out = a.target.send(a.req.method ?? 'GET', a.req.url ?? '/', a.headers, a.body);
    const onClientGone = (): void => {
      if (!a.res.writableFinished) out.destroy();
      settle('done');
    };
    a.res.once('close', onClientGone);
    out.on('socket', (socket: Socket) => {
      if (!socket.connecting) return;
      socket.setNoDelay(true); // a reused keep-alive socket keeps it
      connectTimer = setTimeout(() => out.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), a.connectTimeoutMs);
      socket.once('connect', () => clearTimeout(connectTimer));
    });
    const unwatch = a.watchOwner(() => {
      if (!settled) out.destroy(Object.assign(new Error('owner left the replica registry'), { code: 'EOWNERGONE' }));
    });
    out.on('response', (up) => {
      if (up.statusCode === 421 && rawHeader(up.rawHeaders, MISDIRECTED_HEADER) !== undefined) {
        up.resume();
        return settle('misdirected');
      }
      a.onAnswer();
      settle('done');
      relayOwnerAnswer(up, a);
    });
    out.on('error', (err: NodeJS.ErrnoException) => {
      if (settled) return;
      if (a.res.destroyed || a.res.writableEnded) return settle('done');
      if (mayRetry && out.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')) return settle('retry');
      settle(err.code === 'ETIMEDOUT' ? 'unreachable' : 'down');
    });
  });
}

/**
 * The owner's answer to the client. If it breaks off (the owner died mid-answer): a GET (standalone
 * stream) ends cleanly, so the client reconnects to whichever replica then serves the session; a POST
 * answered with SSE gets a JSON-RPC error (-32603) for each request whose response had not been
 * relayed, so the client does not wait for it; any other answer is cut.
 */
function relayOwnerAnswer(up: IncomingMessage, a: ForwardAttempt): void {
  const res = a.res;
  if (res.destroyed || res.writableEnded) return void up.destroy();
  const sse = (rawHeader(up.rawHeaders, 'content-type') ?? '').includes('text/event-stream');
  const isGet = a.req.method === 'GET';
  const body = a.body;
  res.once('close', () => {
    if (!up.complete) up.destroy();
  });
  relayResponse(up, res, {
    drop: RESPONSE_HOP_BY_HOP,
    // An SSE answer of known length is complete (the owner wrote it at once): its head goes with its
    // body, in one write. Only an open-ended stream's head is passed on at once, as the owner sent it.
    flushHead: sse && rawHeader(up.rawHeaders, 'content-length') === undefined,
    ...(sse && !isGet && body ? { keep: KEPT_SSE_BYTES } : {}),
    onBroken: (relayed) => {
      a.onBroken();
      if (isGet) return '';
      return relayed !== undefined && body ? unansweredErrors(body, relayed) : undefined;
    },
  });
}
