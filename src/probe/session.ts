/**
 * One Streamable HTTP session (spec 2025-03-26 … 2025-11-25), driven by the official SDK client
 * (`@modelcontextprotocol/sdk` Client + StreamableHTTPClientTransport), in order:
 *
 *   initialize, initialized (the handshake), get-stream (the SDK's standalone GET, held all along),
 *   trigger (`notifications/roots/list_changed`, and `--notify`), tools/list, ping, call (a list
 *   request the server advertises), write/read (`--write`/`--read`), large-body (`--body-bytes`),
 *   notification (a message sent after the trigger reached the held GET stream), idle (`--hold`),
 *   answer (the client's answers to server-initiated requests were accepted), delete, after-delete
 *   (404), forged-session (404).
 *
 * A session stops at a failed handshake; later checks are then not run (not "skipped": they never
 * got a session to run on), except forged-session, which needs none.
 */
import { randomUUID } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { EmptyResultSchema, ListRootsRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { classify, describeExchange, exchangeSince, failure, pass, requestFailure, skip } from './checks.js';
import { toolArguments } from './options.js';
import { postRaw } from './rpc.js';
import { stateChecks } from './state.js';
import { SessionProbe, toolText, type RunContext } from './step.js';
import type { CheckResult, Exchange, SessionRun, Symptom } from './types.js';

/** How long to wait for the SDK's background GET to be answered. */
const GET_WAIT_MS = 2_000;
/** How long a terminated session may still be served before it counts as alive (replicas learning of a DELETE). */
const DELETE_GRACE_MS = 2_000;

export async function probeStreamableSession(run: RunContext, index: number): Promise<SessionRun> {
  const p = new SessionProbe(run, index, 'streamable-http');
  // No reconnection of the GET stream: a stream cut by the server or a balancer is a finding, not something to hide.
  const transport = new StreamableHTTPClientTransport(run.opts.url, {
    fetch: p.log.fetch,
    reconnectionOptions: { maxRetries: 0, initialReconnectionDelay: 1_000, maxReconnectionDelay: 1_000, reconnectionDelayGrowFactor: 1 },
  });
  const client = newClient(p);
  try {
    if (await handshake(p, client, transport)) await sessionChecks(p, client, transport, transport.sessionId);
  } finally {
    await client.close().catch(() => undefined);
  }
  // The id the server issued, also when the handshake failed after initialize.
  const sessionId = p.log.exchanges.find((e) => e.rpc === 'initialize')?.sessionId;
  const stateless = sessionId === undefined && p.checks.some((c) => c.id === 'initialize' && c.status === 'pass');
  // A stateless server has no sessions to forge: it may ignore Mcp-Session-Id (as 2026-07-28 servers must).
  if (stateless) p.add(skip('forged-session', 'stateless server: it issues no Mcp-Session-Id, so there is none to forge'));
  else p.add(await unknownIdCheck(p, 'forged-session', randomUUID(), transport.protocolVersion, 'unknown-id-accepted'));
  return p.result(sessionId, transport.protocolVersion);
}

/** Everything after the handshake, in order (see the file comment). */
async function sessionChecks(p: SessionProbe, client: Client, transport: StreamableHTTPClientTransport, sessionId: string | undefined): Promise<void> {
  const get = await heldStream(p);
  const pending = await trigger(p, client, get);
  await p.step('tools/list', 'tools/list', async () => `${(await client.listTools(undefined, p.requestOptions())).tools.length} tools`);
  await p.step('ping', 'ping', async () => (await client.ping(p.requestOptions()), 'answered'));
  await listCall(p, client);
  await stateChecks(p, client);
  await largeBody(p, client);
  await notification(p, get, pending);
  await idle(p, client);
  p.add(streamCheck(p, get, sessionId));
  await answersSent(p, get, p.log.last((e) => e.rpc === 'notifications/initialized')?.at ?? p.started);
  const answers = answerCheck(p.log.exchanges);
  if (answers) p.add(answers);
  await endSession(p, transport, sessionId);
}

/** The SDK client: declares roots (with `listChanged`), so a server that uses roots asks for them on the GET stream. */
export function newClient(p: SessionProbe): Client {
  const client = new Client({ name: 'mcp-migrate-probe', version: p.run.version }, { capabilities: { roots: { listChanged: true } } });
  client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: [{ uri: `file:///${p.token}`, name: 'mcp-migrate probe' }] }));
  // Transport errors (a refused GET, a refused answer) are in the recorded exchanges; the checks report them.
  client.onerror = () => undefined;
  return client;
}

/** `initialize` + `notifications/initialized`, as `client.connect` sends them; two checks. */
async function handshake(p: SessionProbe, client: Client, transport: StreamableHTTPClientTransport): Promise<boolean> {
  try {
    await client.connect(transport, p.requestOptions());
  } catch (err) {
    const init = p.log.last((e) => e.rpc === 'initialize');
    const initialized = p.log.last((e) => e.rpc === 'notifications/initialized');
    if (!initialized || !init || (init.status ?? 0) >= 400 || init.network !== undefined) {
      p.add(initializeFailure(init, err));
      return false;
    }
    p.add(pass('initialize', initializeDetail(transport), init));
    p.add(requestFailure('initialized', initialized, err));
    return false;
  }
  p.add(pass('initialize', initializeDetail(transport), p.log.last((e) => e.rpc === 'initialize')));
  p.add(pass('initialized', 'notifications/initialized accepted', p.log.last((e) => e.rpc === 'notifications/initialized')));
  return true;
}

function initializeDetail(transport: StreamableHTTPClientTransport): string {
  return `protocol ${transport.protocolVersion ?? '?'}, ${transport.sessionId ? 'Mcp-Session-Id issued' : 'no Mcp-Session-Id (stateless)'}`;
}

/** A failed `initialize`: no session was made, so a 400 or 404 here is about the endpoint, not a session. */
export function initializeFailure(init: Exchange | undefined, err: unknown): CheckResult {
  if (init && init.network === undefined && init.status !== undefined && [400, 404, 405, 406, 415].includes(init.status)) {
    return failure('initialize', 'endpoint-refused', describeExchange(init), init);
  }
  return requestFailure('initialize', init, err);
}

/** Waits for the answer to the SDK's background GET (sent right after `notifications/initialized`). */
async function heldStream(p: SessionProbe): Promise<Exchange | undefined> {
  const isGet = (e: Exchange): boolean => e.method === 'GET';
  await p.log.waitFor(() => p.log.exchanges.some((e) => isGet(e) && (e.status !== undefined || e.network !== undefined)), Math.min(GET_WAIT_MS, p.timeout()));
  return p.log.exchanges.find(isGet);
}

/** A list request the server advertises (resources, else prompts, else tools): harmless, and one more request. */
async function listCall(p: SessionProbe, client: Client): Promise<void> {
  const caps = client.getServerCapabilities() ?? {};
  if (caps.resources) await p.step('call', 'resources/list', async () => `resources/list: ${(await client.listResources(undefined, p.requestOptions())).resources.length} resources`);
  else if (caps.prompts) await p.step('call', 'prompts/list', async () => `prompts/list: ${(await client.listPrompts(undefined, p.requestOptions())).prompts.length} prompts`);
  else await p.step('call', 'tools/list', async () => `tools/list: ${(await client.listTools(undefined, p.requestOptions())).tools.length} tools`);
}

/** `--body-bytes N`: a `ping` padded to about N bytes in `_meta` (413 from a balancer is the finding). */
async function largeBody(p: SessionProbe, client: Client): Promise<void> {
  const n = p.run.opts.bodyBytes;
  if (!n) return;
  const padding = 'x'.repeat(n);
  await p.step('large-body', 'ping', async () => {
    await client.request({ method: 'ping', params: { _meta: { 'mcp-migrate.probe/padding': padding } } }, EmptyResultSchema, p.requestOptions());
    return `a ${n}-byte ping was answered`;
  });
}

/** What the notification check waits for: messages on `stream` from `since` on. */
interface PendingNotification {
  since: number;
  stream: NonNullable<Exchange['stream']>;
  /** The replica that received the trigger. */
  replica?: string;
}

/**
 * The trigger, sent early so the wait overlaps the other checks: `notifications/roots/list_changed`
 * (a server that uses roots asks for them again, on the GET stream), then `--notify TOOL` if given.
 */
async function trigger(p: SessionProbe, client: Client, get: Exchange | undefined): Promise<PendingNotification | undefined> {
  const stream = get?.status === 200 ? get.stream : undefined;
  if (!stream || stream.endedAt !== undefined) return undefined;
  const since = p.run.clock();
  await p.step('trigger', 'notifications/roots/list_changed', async () => (await client.sendRootsListChanged(), 'notifications/roots/list_changed accepted'));
  const replica = p.checks.at(-1)!.replica;
  const notify = p.run.opts.notify;
  if (notify) {
    await p.step('trigger', 'tools/call', async () => {
      const r = await client.callTool({ name: notify.name, arguments: toolArguments(notify, p.token) }, undefined, p.requestOptions());
      return `${notify.name} → "${toolText(r)}"`;
    });
  }
  return { since, stream, ...(replica !== undefined ? { replica } : {}) };
}

/** A message the server sent after the trigger must reach the held GET stream within `--notify-wait` of it. */
async function notification(p: SessionProbe, get: Exchange | undefined, pending: PendingNotification | undefined): Promise<void> {
  if (!pending) {
    p.add(skip('notification', 'no GET stream held'));
    return;
  }
  const { since, stream } = pending;
  const after = (): boolean => stream.messages.some((m) => m.at >= since);
  await p.log.waitFor(() => after() || stream.endedAt !== undefined, Math.min(since + p.run.opts.notifyWaitMs, p.run.deadline) - p.run.clock());
  const where = `the GET stream${get?.replica ? ` held on replica ${get.replica}` : ''}`;
  const from = pending.replica ? ` (trigger on replica ${pending.replica})` : '';
  const first = stream.messages.find((m) => m.at >= since);
  if (first) p.add(pass('notification', `${first.method} reached ${where}${from}`, get));
  else {
    const before = stream.messages.length;
    p.add(failure('notification', 'notification-missing', `nothing reached ${where} within ${p.run.opts.notifyWaitMs} ms of the trigger${from}; ${before} message(s) before it`, get));
  }
}

/** `--hold`: the session idles with its GET stream open, then must still answer. */
async function idle(p: SessionProbe, client: Client): Promise<void> {
  const ms = Math.min(p.run.opts.holdMs, p.run.deadline - p.run.clock() - p.run.opts.requestTimeoutMs);
  if (p.run.opts.holdMs <= 0) return;
  if (ms <= 0) {
    p.add(skip('idle', `not run: --hold ${p.run.opts.holdMs} ms does not fit in what is left of --timeout`));
    return;
  }
  await new Promise((r) => setTimeout(r, ms));
  await p.step('idle', 'ping', async () => (await client.ping(p.requestOptions()), `answered after ${Math.round(ms / 1000)} s idle`));
}

/** The standalone GET stream: opened (or 405: not offered), and still open now. */
export function streamCheck(p: SessionProbe, get: Exchange | undefined, sessionId: string | undefined): CheckResult {
  if (!get) return skip('get-stream', 'the client opened no GET stream');
  if (get.status === 405) return skip('get-stream', 'the server offers no standalone GET stream (405)', get);
  if (get.network !== undefined || (get.status ?? 0) >= 400) {
    return !sessionId && get.status === 400 ? skip('get-stream', `stateless server: ${describeExchange(get)}`, get) : requestFailure('get-stream', get, undefined);
  }
  if (get.stream?.endedAt !== undefined) {
    const lived = Math.round((get.stream.endedAt - get.at) / 1000);
    return failure('get-stream', 'stream-cut', `the GET stream ended after ${lived} s, before the session did${get.stream.endError ? ` (${get.stream.endError})` : ''}`, get);
  }
  return pass('get-stream', `held for ${Math.round((p.run.clock() - get.at) / 1000)} s${get.replica ? ` on replica ${get.replica}` : ''}`, get);
}

/**
 * Keeps the session open until `--ask-wait` after `handshakeAt` unless the server has already sent a
 * request of its own on the GET stream (servers often ask for roots a moment after
 * `notifications/initialized`; ending the session first would leave the answer check with nothing),
 * then waits (briefly) until the client has answered every such request.
 */
async function answersSent(p: SessionProbe, get: Exchange | undefined, handshakeAt: number): Promise<void> {
  const stream = get?.status === 200 ? get.stream : undefined;
  const asked = (): number => (stream?.messages ?? []).filter((m) => !m.method.startsWith('notifications/') && m.method !== 'response' && m.method !== 'unparsable').length;
  const answered = (): number => p.log.exchanges.filter((e) => e.rpc === 'response' && (e.status !== undefined || e.network !== undefined)).length;
  if (stream) await p.log.waitFor(() => asked() > 0 || stream.endedAt !== undefined, Math.min(handshakeAt + p.run.opts.askWaitMs - p.run.clock(), p.timeout()));
  await p.log.waitFor(() => answered() >= asked(), Math.min(GET_WAIT_MS, p.timeout()));
}

/** The client's answers to server-initiated requests (e.g. `roots/list`): each POST must be accepted. */
export function answerCheck(exchanges: readonly Exchange[]): CheckResult | undefined {
  const answers = exchanges.filter((e) => e.rpc === 'response');
  if (answers.length === 0) return undefined;
  const refused = answers.find((e) => e.network !== undefined || (e.status ?? 0) >= 400);
  if (refused) return failure('answer', 'answer-refused', `an answer to a server-initiated request got ${describeExchange(refused)}`, refused);
  return pass('answer', `${answers.length} answer(s) to server-initiated requests accepted`, answers.at(-1));
}

/** DELETE (405 means the server does not let clients end sessions: then nothing more to check), then 404 after it. */
async function endSession(p: SessionProbe, transport: StreamableHTTPClientTransport, sessionId: string | undefined): Promise<void> {
  if (!sessionId) {
    p.add(skip('delete', 'stateless server: no session to end'));
    return;
  }
  const mark = p.log.exchanges.length;
  let error: unknown;
  await transport.terminateSession().catch((err: unknown) => (error = err));
  const ex = exchangeSince(p.log.exchanges, mark, (e) => e.method === 'DELETE');
  if (ex?.status === 405) {
    p.add(skip('delete', 'the server does not let clients end sessions (405, allowed by the spec)', ex));
    return;
  }
  if (error !== undefined || !ex || ex.status === undefined || ex.status >= 400) {
    p.add(requestFailure('delete', ex, error));
    return;
  }
  p.add(pass('delete', `${ex.status}${ex.replica ? ` on replica ${ex.replica}` : ''}`, ex));
  p.add(await unknownIdCheck(p, 'after-delete', sessionId, transport.protocolVersion, 'alive-after-delete'));
}

/**
 * A `ping` with an id the server must not know (made up, or terminated) must get 404 (spec §Session
 * Management). A 2xx answer is retried for {@link DELETE_GRACE_MS} (replicas learning of a DELETE).
 */
async function unknownIdCheck(p: SessionProbe, id: string, sessionId: string, protocolVersion: string | undefined, served: Symptom): Promise<CheckResult> {
  const headers = { 'mcp-session-id': sessionId, 'mcp-protocol-version': protocolVersion ?? '2025-11-25' };
  const until = p.run.clock() + DELETE_GRACE_MS;
  let ex: Exchange;
  for (;;) {
    ({ ex } = await postRaw(p.log, p.run.opts.url, { jsonrpc: '2.0', id: `mcp-migrate-probe-${id}`, method: 'ping' }, headers));
    if (ex.status === undefined || ex.status >= 300 || p.run.clock() >= until) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  return judgeUnknownId(id, ex, served);
}

/** 404 passes; 400 is the common SDK-router answer the spec forbids; 2xx means the id was served. */
export function judgeUnknownId(id: string, ex: Exchange, served: Symptom): CheckResult {
  if (ex.status === 404) return pass(id, `404${ex.replica ? ` on replica ${ex.replica}` : ''}`, ex);
  if (ex.status === 400) return failure(id, 'unknown-id-400', `${describeExchange(ex)}; the spec requires 404`, ex);
  if (ex.status !== undefined && ex.status < 300) return failure(id, served, `${describeExchange(ex)}: an id the server must not know was served`, ex);
  const symptom = classify(ex);
  return failure(id, symptom === 'session-unknown' ? 'rpc-error' : symptom, `${describeExchange(ex)}; expected 404`, ex);
}
