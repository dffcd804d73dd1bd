import type { ServerResponse } from 'node:http';
import { endSseStream } from './handover.js';

/**
 * What a replica is answering, for a graceful shutdown (`SessionTransportRegistry.drain`): requests in
 * flight (counted from the moment the registry sees them until their response closes), by session, and
 * open GET SSE streams, which never end by themselves and are ended with a `retry:` line instead of
 * waited for.
 */
export class RequestTracker {
  #inFlight = 0;
  readonly #bySession = new Map<string, number>();
  readonly #streams = new Set<ServerResponse>();
  #onIdle: (() => void) | undefined;

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
