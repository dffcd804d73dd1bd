/**
 * The likely causes a probe can name, each with why it breaks clients behind a round-robin load
 * balancer and what to do (which mcp-migrate command, and which mode). An explicit table, in the
 * order the verdict lists causes: what stops every session first, protocol details last.
 */
import type { CauseId } from './types.js';

export interface CauseText {
  title: string;
  why: string;
  fix: string[];
}

const ANALYZE = '`mcp-migrate analyze <server source>` names the in-process state that ties a session to one replica.';

export const CAUSES: Record<CauseId, CauseText> = {
  unreachable: {
    title: 'The endpoint could not be reached',
    why: 'No HTTP answer at all: connection refused or reset, DNS, TLS, or nothing within --request-timeout.',
    fix: ['Check the URL, the port and that the deployment is up; a TLS error may need the right host name.'],
  },
  'auth-required': {
    title: 'The endpoint requires credentials',
    why: 'initialize was answered 401 or 403, so no session could be opened.',
    fix: ["Pass them with --header 'Authorization: Bearer <token>' (repeat --header for more)."],
  },
  'endpoint-refused': {
    title: 'No MCP endpoint answered initialize',
    why: 'initialize got an error status (404: wrong path; 405/406/415: not a Streamable HTTP endpoint).',
    fix: ['Point the probe at the MCP endpoint itself (often /mcp); for a legacy HTTP+SSE server use --legacy-sse <its SSE URL>.'],
  },
  'needs-sticky-routing': {
    title: 'Sessions are lost on other replicas',
    why: 'A request carrying a live Mcp-Session-Id reached a replica that does not know the session (404, or 400 "No valid session ID"): each replica keeps its sessions in its own memory.',
    fix: [
      'No code change: run `mcp-migrate proxy --store redis://… --upstream <server>` in front of every replica (owner routing, its default, keeps each session on the replica that opened it, per-session state and all; `--affinity replay` rebuilds only the handshake, for servers that keep nothing else).',
      'Or rewrite the server: `mcp-migrate apply --store redis` moves its session registry and session maps to Redis.',
      ANALYZE,
      'Sticky routing on the Mcp-Session-Id header is a stopgap (clients do not return sticky cookies, and a replica restart still loses its sessions).',
    ],
  },
  'handshake-not-rebuilt': {
    title: 'Replicas know the session id but not its handshake',
    why: 'A replica accepted the session id and answered 400 "Server not initialized": its transport for the session never saw initialize.',
    fix: [
      '`mcp-migrate apply --store redis`: its transport-registry rewrite replays the stored initialize on any replica.',
      'Or `mcp-migrate proxy`, which replays the handshake on each replica it meets the session on.',
    ],
  },
  'state-lost-across-replicas': {
    title: 'State a tool wrote is lost on other replicas',
    why: 'A later request of the same session read back a different value (--write/--read): the value lives in the memory of the replica that served the write. Replaying the handshake cannot rebuild it.',
    fix: [
      '`mcp-migrate proxy` (owner routing, its default; not `--affinity replay`): the replica that created a session keeps serving it and the others forward to it.',
      'Or `mcp-migrate apply --store redis` if the state is a session-keyed map it can move to Redis.',
      ANALYZE,
    ],
  },
  'state-shared-across-sessions': {
    title: 'Sessions on one replica overwrite each other’s state',
    why: 'A session read back a value another session wrote on the same replica: the server keeps this state per process, not per session, so concurrent sessions see each other’s values even without a load balancer.',
    fix: [
      'Key the state by session id in the server (`mcp-migrate analyze` reports module-level state as no-global-connection-state).',
      'Or give every session its own process: `mcp-migrate proxy -- <stdio command>` runs one child per session.',
    ],
  },
  'state-not-read-back': {
    title: 'State a tool wrote was read back as another session’s value',
    why: 'A later read returned a value another session of this run wrote. Either the read reached another replica (state lost across replicas) or sessions on one process overwrite each other (per-process state); the endpoint does not name its replicas, so the probe cannot tell which.',
    fix: [
      'Rerun with --concurrency 1 (then only the first is possible), or name the replica header with --replica-header.',
      'Lost across replicas: `mcp-migrate proxy --affinity owner`, or `mcp-migrate apply --store redis`.',
      'Per process: key the state by session id, or one process per session (`mcp-migrate proxy -- <stdio command>`).',
    ],
  },
  'unknown-session-400': {
    title: 'Unknown or ended session ids get 400 instead of 404',
    why: 'The spec (Streamable HTTP §Session Management) requires 404 for a session id the server does not know, which tells clients to initialize again; after a 400 they give up with "No valid session ID".',
    fix: [
      "Answer 404 in the server's session router for ids it does not know.",
      '`mcp-migrate proxy` answers 404 whatever the server behind it says.',
    ],
  },
  'unknown-session-accepted': {
    title: 'A made-up session id was served',
    why: 'A request with a random Mcp-Session-Id got a 2xx answer: the server does not check session ids, so any client can act in a session it guessed or stole.',
    fix: ['Validate session ids and bind them to the authenticated principal (spec security best practices §Session Hijacking); `mcp-migrate proxy` signs its session ids.'],
  },
  'delete-not-shared': {
    title: 'DELETE did not end the session everywhere',
    why: 'After a successful DELETE the session id was still served (2xx): the session ended only on the replica that got the DELETE.',
    fix: ['`mcp-migrate proxy` and `mcp-migrate apply --store redis` end a session on every replica (the record is deleted from the shared store).'],
  },
  'notifications-lost': {
    title: 'Messages do not reach a GET stream held on another replica',
    why: 'After the trigger, nothing the server sent reached the standalone GET stream, while in other sessions it did: the replica that sent it is not the one holding the stream.',
    fix: [
      '`mcp-migrate proxy` carries standalone-stream messages across replicas through Redis; a server rewritten by `mcp-migrate apply --store redis` does too.',
      'Otherwise notifications reach only clients whose stream happens to be on the sending replica.',
    ],
  },
  'server-requests-lost': {
    title: "Answers to the server's requests are refused on other replicas",
    why: 'The client answered a server-initiated request (roots/list, sampling, elicitation) with a POST that was refused: it reached a replica that neither holds the session nor the pending request.',
    fix: ['`mcp-migrate proxy` routes each answer to the replica that asked (request ids are rewritten per replica).'],
  },
  'balancer-limits': {
    title: 'A load balancer limit cut a request or stream',
    why: 'A body was refused as too large (413), a request hit a gateway timeout (504/408), or a held SSE stream was closed before the session ended (an idle timeout).',
    fix: [
      'Raise the body limit to the largest tool argument (nginx client_max_body_size, 1 MB by default).',
      'Raise read/idle timeouts above the longest tool call and stream idle time (nginx proxy_read_timeout, AWS ALB idle timeout 60 s, Cloudflare 100 s); turn off response buffering for SSE.',
      '`mcp-migrate proxy` sends an SSE keep-alive comment every 15 s, which keeps idle streams open through most balancers.',
    ],
  },
  'no-answer': {
    title: 'Requests got no answer in time',
    why: 'A request got no answer within --request-timeout: a balancer or server timeout, an overloaded replica, or a reply sent to a stream on another replica (a legacy SSE server never answers a POST for a session another replica holds).',
    fix: ['Look up which replica held it (the balancer access log); if it belonged to a session another replica holds, see "Sessions are lost on other replicas".'],
  },
  'upstream-unavailable': {
    title: 'Replicas or the server behind them were unavailable',
    why: '502 or 503: the balancer had no healthy replica, or a proxy could not reach its MCP server or store.',
    fix: ['Check replica health and logs; with `mcp-migrate proxy`, 503 with Retry-After means its Redis was unreachable.'],
  },
  'request-failed': {
    title: 'Requests failed for reasons that are not about sessions',
    why: 'A request got a JSON-RPC error or an unexpected result that does not point at routing (a missing tool, invalid arguments, an error result).',
    fix: ['Check the detail below; for --write/--read/--notify, check the tool names and JSON arguments.'],
  },
  'modern-nonconformant': {
    title: '2026-07-28 requests got other answers than the spec requires',
    why: 'A 2026-07-28 request got a different status, error code or error id than the spec requires, so 2026-07-28 clients cannot tell what went wrong (e.g. a legacy answer instead of -32022, which they need to fall back).',
    fix: ['`mcp-migrate proxy` answers 2026-07-28 requests in front of a 2025-era server with the exact errors (docs/modern.md).'],
  },
  incomplete: {
    title: 'The probe did not finish within --timeout',
    why: 'Checks still running when --timeout was reached were stopped; what they had seen is reported.',
    fix: ['Raise --timeout, or lower --sessions or --hold.'],
  },
};

/** Verdict order: what stops every session first. */
export const CAUSE_ORDER = Object.keys(CAUSES) as CauseId[];
