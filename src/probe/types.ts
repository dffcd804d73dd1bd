/**
 * The data a probe run produces: what was sent, what came back, which checks passed, and the verdict.
 * Everything here is plain data (JSON-serializable), so reporters and the verdict are pure functions of it.
 */

/** Which protocol revisions the endpoint serves (spec 2026-07-28 `basic/versioning.mdx` §Backward Compatibility). */
export type Era = 'legacy' | 'modern' | 'dual' | 'none';

/** Which client the checks of one run used. */
export type ProbeTransport = 'streamable-http' | 'legacy-sse' | 'modern';

/** A server-to-client message seen on a held SSE stream (standalone GET stream or legacy SSE stream). */
export interface StreamMessage {
  /** Milliseconds since the run started. */
  at: number;
  /** JSON-RPC method, or `response` for a response (a resumed stream). */
  method: string;
}

/** What a long-lived SSE response (GET stream) carried and how it ended. */
export interface StreamRecord {
  messages: StreamMessage[];
  /** Milliseconds since the run started; absent while the stream is open. */
  endedAt?: number;
  /** Why reading stopped when it was not a clean end of stream (network error, abort). */
  endError?: string;
}

/** One HTTP exchange, as the probe's recording `fetch` saw it. */
export interface Exchange {
  /** Milliseconds since the run started, when the request was sent. */
  at: number;
  /** Milliseconds until the response headers arrived (absent when none did). */
  ms?: number;
  method: string;
  /** Path and query of the request URL. */
  path: string;
  /** JSON-RPC method of a POST body (first message of a batch); `response` for a posted response. */
  rpc?: string;
  /** HTTP status; absent when no response arrived (`network` says why). */
  status?: number;
  /** The replica that answered, from the replica header (`x-mcp-migrate-replica` or `--replica-header`). */
  replica?: string;
  /** `Mcp-Session-Id` the response carried. */
  sessionId?: string;
  /** A JSON-RPC error (or the text) of a response with status ≥ 400. */
  error?: { code?: number; message: string };
  /** Network failure: connection refused, reset, DNS, TLS, timeout, abort. */
  network?: string;
  /** For an SSE answer to a GET: what the stream carried. */
  stream?: StreamRecord;
}

/**
 * What a failed check saw, in protocol terms. The verdict maps symptoms to causes; a check never
 * guesses a cause itself.
 */
export type Symptom =
  | 'unreachable' // no HTTP answer at all (refused, DNS, TLS, reset)
  | 'timeout' // no answer within the request timeout
  | 'auth' // 401 / 403
  | 'endpoint-refused' // initialize answered with another error status (404 wrong path, 405, 406, 415…)
  | 'session-unknown' // a live session's request got 404, or 400 naming the session
  | 'not-initialized' // 400 "Server not initialized": the replica knows the id, not the handshake
  | 'unknown-id-400' // an unknown or terminated id got 400 where the spec requires 404
  | 'unknown-id-accepted' // a made-up id was served (2xx)
  | 'alive-after-delete' // a terminated session was still served (2xx)
  | 'state-mismatch' // a read did not return what the session wrote
  | 'notification-missing' // nothing reached the held GET stream after the trigger
  | 'answer-refused' // the client's answer to a server-initiated request was refused
  | 'stream-cut' // a held SSE stream ended before the client closed it
  | 'too-large' // 413
  | 'gateway-timeout' // 504 / 408
  | 'bad-gateway' // 502 / 503
  | 'rpc-error' // a JSON-RPC error or an unexpected result that is not about sessions
  | 'wrong-error' // a 2026-07-28 request got another status or error code than the spec requires
  | 'aborted'; // the run's --timeout ended the check

export type CheckStatus = 'pass' | 'fail' | 'skip' | 'warn';

/** The outcome of one check in one session. */
export interface CheckResult {
  /** Check id, e.g. `initialize`, `tools/list`, `after-delete`, `forged-session` (see docs/probe.md). */
  id: string;
  status: CheckStatus;
  /** What happened, one line: status, error text, replica. */
  detail: string;
  /** Set when `status` is `fail` (and for `warn`). */
  symptom?: Symptom;
  /** HTTP status of the deciding exchange. */
  http?: number;
  /** JSON-RPC error code of the deciding exchange. */
  rpcCode?: number;
  /** Replica that answered the deciding exchange. */
  replica?: string;
  /**
   * For `state-mismatch`: the replica that served the write, whether the value read was another
   * session's, and whether (unnamed replicas, concurrent sessions) lost and shared state cannot be told apart.
   */
  state?: { writeReplica?: string; otherSession: boolean; ambiguous?: boolean };
}

/** One probe session (or, for 2026-07-28, one series of stateless requests). */
export interface SessionRun {
  index: number;
  transport: ProbeTransport;
  /** `Mcp-Session-Id` (or legacy `sessionId`) the server issued; absent for stateless endpoints. */
  sessionId?: string;
  /** Negotiated protocol version. */
  protocolVersion?: string;
  checks: CheckResult[];
  exchanges: Exchange[];
  durationMs: number;
}

/** How requests spread over replicas (only when the endpoint names them in the replica header). */
export interface Spread {
  /** The response header read, lower case. */
  header: string;
  /** Replica id → number of responses it sent. Empty when no response carried the header. */
  replicas: Record<string, number>;
  /** Responses without the header. */
  unnamed: number;
  /** Sessions in which responses came from more than one replica. */
  sessionsCrossing: number;
  /** Sessions with at least one named response. */
  sessionsNamed: number;
}

/** Era detection: one raw `server/discover` and one raw `initialize`. */
export interface EraResult {
  era: Era;
  /** 2026-07-28: what `server/discover` got. */
  modern: { supported: boolean; detail: string; status?: number; supportedVersions?: string[] };
  /** 2025-era: what `initialize` got. */
  legacy: { supported: boolean; detail: string; status?: number; protocolVersion?: string; sessionIssued?: boolean };
  /** Set when the endpoint gave no HTTP answer at all. */
  unreachable?: string;
  exchanges: Exchange[];
}

/** A likely cause of failed checks, with what to do about it. */
export interface Cause {
  id: CauseId;
  title: string;
  /** Why it breaks clients behind a round-robin load balancer. */
  why: string;
  /** What to do, most direct first. */
  fix: string[];
  /** Sessions with at least one check attributed to this cause. */
  sessions: number;
  /** Up to three examples: `session 3 (streamable-http): tools/list → 400 on replica b: …`. */
  evidence: string[];
}

export type CauseId =
  | 'unreachable'
  | 'auth-required'
  | 'endpoint-refused'
  | 'needs-sticky-routing'
  | 'handshake-not-rebuilt'
  | 'state-lost-across-replicas'
  | 'state-shared-across-sessions'
  | 'state-not-read-back'
  | 'unknown-session-400'
  | 'unknown-session-accepted'
  | 'delete-not-shared'
  | 'notifications-lost'
  | 'server-requests-lost'
  | 'balancer-limits'
  | 'no-answer'
  | 'upstream-unavailable'
  | 'request-failed'
  | 'modern-nonconformant'
  | 'incomplete';

export interface Verdict {
  /** True only when every check that ran passed (skips and warnings allowed) and the run completed. */
  survives: boolean;
  /** One sentence. */
  headline: string;
  causes: Cause[];
}

/** The options a run used, as reported (headers are listed by name only: they may carry credentials). */
export interface ReportedOptions {
  sessions: number;
  concurrency: number;
  timeoutMs: number;
  requestTimeoutMs: number;
  era: 'auto' | 'legacy' | 'modern';
  headerNames: string[];
  replicaHeader: string;
  legacySseUrl?: string;
  write?: string;
  read?: string;
  expect?: string;
  notify?: string;
  bodyBytes?: number;
  holdMs?: number;
}

/** Everything one `mcp-migrate probe` run found. */
export interface ProbeReport {
  url: string;
  options: ReportedOptions;
  era: EraResult;
  sessions: SessionRun[];
  spread: Spread;
  /** Set when `--timeout` ended the run before every session finished. */
  incomplete?: { reason: string; sessionsFinished: number; sessionsPlanned: number };
  verdict: Verdict;
  durationMs: number;
}
