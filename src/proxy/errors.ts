import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { detailOf, errorKindOf, writeErrorAnswer, type ErrorKind, type JsonRpcId } from '@mcp-migrate/runtime';

/**
 * Failures as every front answers them: the runtime's one error table (`ERROR_ANSWERS`: HTTP status,
 * JSON-RPC code and message per error), logged once here.
 */

/** Logs a failure at the level its kind deserves: operators see outages and upstream failures, not clients' mistakes. */
export function logFailure(logger: Logger, kind: ErrorKind, err: unknown): void {
  const message = (err as Error | undefined)?.message;
  if (kind === 'storeUnavailable') logger.warn({ err: message }, 'session store unavailable');
  else if (kind === 'capacity') logger.warn({ err: message }, 'no capacity for another upstream session');
  else if (kind === 'badGateway' || kind === 'gatewayTimeout') logger.warn({ err: message }, 'upstream failed');
  else if (kind === 'internal') logger.error({ err }, 'request failed');
}

/**
 * Answers a request that failed with `err`: its row of the error table (503 store unavailable or no
 * capacity, 404 session gone, 502/504 upstream failed or timed out, else 500), with the request's `id`
 * when the failure concerns one request. Ends the response if its head was already sent.
 */
export function answerFailure(res: ServerResponse, err: unknown, logger: Logger, id: JsonRpcId | null = null): void {
  const kind = errorKindOf(err);
  logFailure(logger, kind, err);
  writeErrorAnswer(res, kind, { id, detail: detailOf(kind, err) });
}
