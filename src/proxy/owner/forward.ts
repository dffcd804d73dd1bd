import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';
import { FORWARD_DROP_HEADERS, FORWARDED_HEADER, MISDIRECTED_HEADER } from '@mcp-migrate/runtime';
import { rawHeaderStrings, type DispatchHandler, type DispatchTarget } from '../http/dispatch.js';
import { rawHeader, requestHeaders, ResponseWriter, RESPONSE_HOP_BY_HOP, type RelayFlow } from '../http/relay.js';
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

/** The client's headers minus hop-by-hop ones, with the owner's `host`, the body length and the forwarding header. */
export function forwardHeaders(headers: IncomingHttpHeaders, host: string, forwarded: string, contentLength: number | undefined): string[] {
  const extra = contentLength !== undefined ? ['content-length', String(contentLength), FORWARDED_HEADER, forwarded] : [FORWARDED_HEADER, forwarded];
  return requestHeaders(headers, host, FORWARD_DROP_HEADERS, extra);
}

export interface ForwardAttempt {
  target: DispatchTarget;
  req: IncomingMessage;
  res: ServerResponse;
  headers: string[];
  /** The POST body as received (absent for GET and DELETE). */
  body: Buffer | undefined;
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

/** Errors of a reused keep-alive connection that the owner closed or reset before any answer. */
const RESET_CODES: ReadonlySet<string> = new Set(['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET']);

/**
 * Sends the client's request to the owner once over the shared relay (undici dispatch, one raw handler:
 * no stream objects) and streams the answer back (SSE included, unbuffered). `mayRetry`: a reset of a
 * reused keep-alive connection before any answer resolves `retry` (nothing reached the owner), so the
 * caller tries once more. No TCP connection within the target's connect timeout: `unreachable`.
 */
export function attemptForward(a: ForwardAttempt, mayRetry: boolean): Promise<ForwardOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    let abort: ((err?: Error) => void) | undefined;
    let stopReason: Error | undefined;
    let writer: ResponseWriter | undefined;
    let discard = false;
    let paused = false;
    let resumeUp: (() => void) | undefined;
    const stop = (err: Error): void => {
      stopReason ??= err;
      abort?.(err);
    };
    const settle = (r: ForwardOutcome): void => {
      if (settled) return;
      settled = true;
      unwatch();
      resolve(r);
    };
    const onClientGone = (): void => {
      if (!a.res.writableFinished) stop(Object.assign(new Error('the client went away'), { code: 'ECLIENTGONE' }));
      settle('done');
    };
    a.res.once('close', onClientGone);
    const unwatch = a.watchOwner(() => {
      if (!settled) stop(Object.assign(new Error('owner left the replica registry'), { code: 'EOWNERGONE' }));
    });
    const handler: DispatchHandler = {
      reusedSocket: false,
      onConnect(abortFn) {
        abort = abortFn;
        if (stopReason) abortFn(stopReason);
      },
      onHeaders(status, rawBuffers, resume) {
        if (status < 200) return true; // 1xx: the final answer follows
        const raw = rawHeaderStrings(rawBuffers);
        if (status === 421 && rawHeader(raw, MISDIRECTED_HEADER) !== undefined) {
          discard = true;
          settle('misdirected');
          return true;
        }
        a.onAnswer();
        settle('done');
        resumeUp = resume;
        writer = relayOwnerAnswer(status, raw, a, {
          pause: () => void (paused = true),
          resume: () => {
            paused = false;
            resumeUp?.();
          },
        });
        if (!writer) {
          discard = true;
          stop(Object.assign(new Error('the client went away'), { code: 'ECLIENTGONE' }));
        }
        return true;
      },
      onData(chunk) {
        if (!discard) writer?.data(chunk);
        return !paused;
      },
      onComplete() {
        a.res.off('close', onClientGone);
        writer?.end();
      },
      onError(err: NodeJS.ErrnoException) {
        a.res.off('close', onClientGone);
        if (writer) return void writer.broken();
        if (settled) return;
        if (a.res.destroyed || a.res.writableEnded) return settle('done');
        const code = (stopReason as NodeJS.ErrnoException | undefined)?.code ?? err.code ?? '';
        if (mayRetry && handler.reusedSocket && RESET_CODES.has(code)) return settle('retry');
        settle(code === 'UND_ERR_CONNECT_TIMEOUT' ? 'unreachable' : 'down');
      },
    };
    a.target.dispatch((a.req.method ?? 'GET') as Dispatcher.HttpMethod, a.req.url ?? '/', a.headers, a.body, handler);
  });
}

/**
 * The owner's answer to the client, or `undefined` if the client is gone. If it breaks off (the owner
 * died mid-answer): a GET (standalone stream) ends cleanly, so the client reconnects to whichever
 * replica then serves the session; a POST answered with SSE gets a JSON-RPC error (-32603) for each
 * request whose response had not been relayed, so the client does not wait for it; any other answer is cut.
 */
function relayOwnerAnswer(status: number, raw: string[], a: ForwardAttempt, flow: RelayFlow): ResponseWriter | undefined {
  const res = a.res;
  if (res.destroyed || res.writableEnded) return undefined;
  const sse = (rawHeader(raw, 'content-type') ?? '').includes('text/event-stream');
  const isGet = a.req.method === 'GET';
  const body = a.body;
  const writer = new ResponseWriter(res, {
    drop: RESPONSE_HOP_BY_HOP,
    // An SSE answer of known length is complete (the owner wrote it at once): its head goes with its
    // body, in one write. Only an open-ended stream's head is passed on at once, as the owner sent it.
    flushHead: sse && rawHeader(raw, 'content-length') === undefined,
    ...(sse && !isGet && body ? { keep: KEPT_SSE_BYTES } : {}),
    onBroken: (relayed) => {
      a.onBroken();
      if (isGet) return '';
      return relayed !== undefined && body ? unansweredErrors(body, relayed) : undefined;
    },
  }, flow);
  writer.head(status, raw);
  return writer;
}
