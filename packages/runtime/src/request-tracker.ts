import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import { endSseStream } from './handover.js';

/** On shutdown, how long open keep-alive connections stay for one last request (answered with `Connection: close`), ms. */
export const KEEP_ALIVE_DRAIN_MS = 1_000;

/**
 * What a replica is answering, for a graceful shutdown (`SessionTransportRegistry.drain`): requests in
 * flight (counted from the moment the registry sees them until their response closes), by session, and
 * open GET SSE streams, which never end by themselves and are ended with a `retry:` line instead of
 * waited for; and the listening servers the requests came through, closed last.
 */
export class RequestTracker {
  #inFlight = 0;
  readonly #servers = new Set<net.Server>();
  #closing = false;
  readonly #bySession = new Map<string, number>();
  readonly #streams = new Set<ServerResponse>();
  #onIdle: (() => void) | undefined;

  /**
   * Notes the server `req` came through (`socket.server`, set by node:net on accepted sockets); once
   * {@link closing}, the response carries `Connection: close`, so no load balancer reuses the connection.
   */
  seen(req: IncomingMessage, res: ServerResponse): void {
    const server = (req.socket as { server?: unknown }).server;
    if (server instanceof net.Server) this.#servers.add(server);
    if (this.#closing && !res.headersSent) res.setHeader('connection', 'close');
  }

  /** From now on responses carry `Connection: close` ({@link seen}). */
  closing(): void {
    this.#closing = true;
  }

  /**
   * Stops the listening servers from accepting connections (a load balancer's next connection is refused,
   * and it tries another replica), and keeps open keep-alive connections until none is left, until
   * `deadline` (ms since the epoch) but at least {@link KEEP_ALIVE_DRAIN_MS}: closing an idle one races
   * with a request a balancer is just sending on it, which it then sees reset (nginx answers 502 and does
   * not retry a POST). A balancer uses up its idle connections to this replica first, each answered with
   * `Connection: close`, and takes the replica out of rotation at its first refused connection, after
   * which it sends nothing on the ones left. Then closes the idle ones. `http.Server.close` would close
   * idle connections at once.
   */
  async closeListeners(deadline: number): Promise<void> {
    for (const server of this.#servers) if (server.listening) net.Server.prototype.close.call(server);
    const until = Math.max(deadline, Date.now() + KEEP_ALIVE_DRAIN_MS);
    while (Date.now() < until && (this.#inFlight > 0 || (await openConnections(this.#servers)) > 0)) await new Promise((r) => setTimeout(r, 25));
    for (const server of this.#servers) (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
  }

  /** Counts a request (of session `sessionId`, if it has one) until `res` closes. Synchronous: call it before any `await`. */
  begin(res: ServerResponse, sessionId: string | undefined): void {
    this.#inFlight++;
    if (sessionId !== undefined) this.#bySession.set(sessionId, (this.#bySession.get(sessionId) ?? 0) + 1);
    res.once('close', () => {
      if (sessionId !== undefined) {
        const n = (this.#bySession.get(sessionId) ?? 1) - 1;
        if (n > 0) this.#bySession.set(sessionId, n);
        else this.#bySession.delete(sessionId);
      }
      if (--this.#inFlight === 0) this.#onIdle?.();
    });
  }

  /** Counts work that outlives its HTTP request (a detached exchange) as in flight until it settles. */
  beginWork(work: Promise<unknown>): void {
    this.#inFlight++;
    void work.finally(() => {
      if (--this.#inFlight === 0) this.#onIdle?.();
    });
  }

  /** Open GET SSE streams. */
  get streams(): number {
    return this.#streams.size;
  }

  /** Holds a GET SSE stream until `res` closes. */
  stream(res: ServerResponse): void {
    this.#streams.add(res);
    res.once('close', () => this.#streams.delete(res));
  }

  /** Whether a request of `sessionId` is in flight here. */
  busy(sessionId: string): boolean {
    return this.#bySession.has(sessionId);
  }

  /** Requests in flight. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Ends every open GET SSE stream with `retry:` (the client reconnects, with `Last-Event-ID`, elsewhere). */
  endStreams(): void {
    for (const res of this.#streams) endSseStream(res);
  }

  /** Resolves once no request is in flight, or at `deadline` (ms since the epoch) with how many still are. */
  async settled(deadline: number): Promise<number> {
    while (this.#inFlight > 0 && Date.now() < deadline) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.#onIdle = resolve;
        timer = setTimeout(resolve, deadline - Date.now());
      });
      clearTimeout(timer);
      this.#onIdle = undefined;
    }
    return this.#inFlight;
  }
}

async function openConnections(servers: Iterable<net.Server>): Promise<number> {
  let n = 0;
  for (const server of servers) n += await new Promise<number>((resolve) => server.getConnections((err, count) => resolve(err ? 0 : count)));
  return n;
}
