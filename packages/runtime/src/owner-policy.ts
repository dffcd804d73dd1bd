/**
 * Owner affinity, the decisions shared by `mcp-migrate proxy` (`src/proxy/owner/routing.ts`) and the
 * runtime's {@link SessionTransportRegistry} with `affinity: 'owner'` (`owner-affinity.ts`): which
 * replica serves a session's request, what happens when its owner is gone, and which headers a
 * forwarded request keeps. See docs/proxy.md "Owner routing" and docs/runtime.md "Owner affinity".
 */
import { FORWARDED_HEADER, type ForwardingMac } from './forwarding-mac.js';

/** What happens to a session whose owner is gone: `end` it (404, the client initializes again), or `replay` (claimed, served by handshake replay). */
export type OwnerLossPolicy = 'end' | 'replay';

/** Why a request for a session whose owner is gone got 404 (the error's detail). */
export const OWNER_LOST_DETAIL = 'the replica that held this session is gone, and its state with it; initialize a new session';

/** Rounds of forward / claim / reload before giving up with 503 `ownerChanging` (ownership changing under our feet). */
export const MAX_OWNER_ROUNDS = 3;

/**
 * What a replica does with a request of a session whose record names `owner` (never a forwarded
 * request: see {@link forwardedBy}): `serve` it (this replica owns it), `claim` it (no owner: never
 * owned, or handed over on a graceful shutdown), or `forward` it to the owner.
 */
export function ownerStep(owner: string | undefined, self: string): 'serve' | 'claim' | 'forward' {
  if (owner === self) return 'serve';
  return owner === undefined ? 'claim' : 'forward';
}

/**
 * What a forward to the owner came to, as a verdict on the owner. `done`: answered there;
 * `misdirected`: 421 (the record must be reloaded); `lost`: the owner is gone (refused, reset, or its
 * registration expired); `unsure`: no TCP connection within the connect timeout while the owner is
 * still registered (503 `ownerUnreachable`: ending or taking over a live owner's session would be wrong).
 */
export type OwnerVerdict = 'done' | 'misdirected' | 'lost' | 'unsure';

/** The {@link OwnerVerdict} of one forward; `stillRegistered` is asked (a fresh registry lookup) only for `unreachable`. */
export async function ownerVerdict(result: 'done' | 'down' | 'unreachable' | 'misdirected', stillRegistered: () => Promise<boolean>): Promise<OwnerVerdict> {
  if (result === 'done' || result === 'misdirected') return result;
  if (result === 'unreachable' && (await stillRegistered())) return 'unsure';
  return 'lost';
}

/**
 * `--on-owner-loss` / `MCP_MIGRATE_ON_OWNER_LOSS` applied to a session whose owner is gone:
 * `end`: delete the record if it still names the lost owner (`deleteIfOwner`), then 404;
 * `claim`: compare-and-set the owner to this replica (`claimOwner`), then serve by handshake replay.
 */
export function lossStep(policy: OwnerLossPolicy): 'end' | 'claim' {
  return policy === 'end' ? 'end' : 'claim';
}

/** Parses `end` / `replay`. @throws RangeError for anything else (`what` names the setting). */
export function parseOwnerLossPolicy(value: string, what: string): OwnerLossPolicy {
  if (value === 'end' || value === 'replay') return value;
  throw new RangeError(`${what} must be end or replay, got "${value}"`);
}

/**
 * The sending replica's id if the request carries a {@link FORWARDED_HEADER} that `mac` verifies for
 * (`sessionId`, `self`); `undefined` if it does not verify (forged by a client, or meant for another
 * process at this address: answer 421 with `MISDIRECTED_HEADER`); `null` if the request is not forwarded.
 */
export function forwardedBy(header: string | string[] | undefined, mac: ForwardingMac, sessionId: string, self: string): string | undefined | null {
  if (header === undefined) return null;
  return mac.verify(Array.isArray(header) ? header.join(',') : header, sessionId, self);
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) plus those a relay always rewrites. Lower-case. */
export const HOP_BY_HOP_HEADERS: readonly string[] = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade'];

/**
 * Request headers a forward to the owner does not pass on: hop-by-hop ones, `host` (the owner's),
 * `content-length` (recomputed from the body sent), `expect` (the body was read in full first) and a
 * client's own {@link FORWARDED_HEADER} (replaced by the sender's signed one).
 */
export const FORWARD_DROP_HEADERS: ReadonlySet<string> = new Set([...HOP_BY_HOP_HEADERS, 'host', 'content-length', 'expect', FORWARDED_HEADER]);

/** Validates an advertised URL (`http(s)://HOST[:PORT]`, no path) and returns it without a trailing slash. @throws Error */
export function checkAdvertiseUrl(value: string, what = '--advertise-url'): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new Error(`${what} must be an http(s)://HOST:PORT URL, got "${value}"`);
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.pathname !== '/' || u.search || u.hash || u.username || u.password) {
    throw new Error(`${what} must be http(s)://HOST:PORT without path, query or credentials, got "${value}"`);
  }
  return `${u.protocol}//${u.host}`;
}
