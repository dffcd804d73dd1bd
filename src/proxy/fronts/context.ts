import type { Logger } from 'pino';
import type { ServerRequestRouter, SessionIdCodec, SessionStore, SessionStreams } from '@mcp-migrate/runtime';
import type { Lifecycle } from '../lifecycle.js';
import type { ProxyMetrics } from '../metrics.js';
import type { OwnerRouting } from '../owner/routing.js';
import type { SessionManager } from '../sessions.js';
import type { UpstreamConnector } from '../upstreams/upstream.js';
import type { VerifiedIdCache } from '../verified-ids.js';

/** What every front (Streamable HTTP, legacy HTTP+SSE, 2026-07-28) gets from the proxy that hosts it (see `createProxy`). */
export interface FrontContext {
  readonly codec: SessionIdCodec;
  /** Verifies session ids for a credential, cached (no HMAC on a steady-state request). */
  readonly verifier: VerifiedIdCache;
  readonly sessions: SessionManager;
  readonly store: SessionStore;
  readonly connector: UpstreamConnector;
  readonly streams: SessionStreams;
  readonly router: ServerRequestRouter;
  /** Lower-case name of the header identifying the principal. */
  readonly principalHeader: string;
  readonly maxBodyBytes: number;
  originAllowed(origin: string): boolean;
  readonly logger: Logger;
  readonly metrics: ProxyMetrics;
  readonly lifecycle: Lifecycle;
  /** Owner affinity, when on (`--affinity owner`). */
  readonly owner: OwnerRouting | undefined;
  /** SSE keep-alive comment interval on GET streams, ms. */
  readonly keepAliveMs: number;
  /** `retry:` of the priming event on standalone GET streams, ms. */
  readonly sseRetryMs: number;
}
