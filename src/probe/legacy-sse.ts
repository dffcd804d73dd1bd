/**
 * One session of the legacy HTTP+SSE transport (spec 2024-11-05 `basic/transports` §HTTP with SSE),
 * driven by the SDK's `SSEClientTransport`: `GET` the SSE endpoint (held all along; the `endpoint`
 * event names the message URL), then every message is a `POST` to that URL, which behind round-robin
 * lands on any replica while the answers must come back on the stream.
 *
 * Checks: sse-stream (the GET), initialize, initialized, tools/list, ping, call, write/read, answer,
 * stream (still open), after-close (closing the stream ends the session: a POST for it must be
 * refused), forged-session (a made-up `sessionId` must be refused). The 2024-11-05 spec names no
 * status for unknown sessions, so any 4xx passes the last two (404 is what Streamable HTTP requires).
 */
import { randomUUID } from 'node:crypto';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { classify, describeExchange, failure, pass, requestFailure } from './checks.js';
import { postRaw } from './rpc.js';
import { answerCheck, newClient } from './session.js';
import { stateChecks } from './state.js';
import { SessionProbe, type RunContext } from './step.js';
import type { CheckResult, Exchange, SessionRun, Symptom } from './types.js';

/** How long a closed session may still accept messages before it counts as alive. */
const CLOSE_GRACE_MS = 2_000;

export async function probeLegacySseSession(run: RunContext, index: number): Promise<SessionRun> {
  const p = new SessionProbe(run, index, 'legacy-sse');
  const sseUrl = run.opts.legacySseUrl!;
  const transport = new SSEClientTransport(sseUrl, { fetch: p.log.fetch });
  const client = newClient(p);
  let messageUrl: URL | undefined;
  try {
    const connected = await handshake(p, client, transport);
    messageUrl = endpointOf(p.log.exchanges, sseUrl);
    if (connected) {
      await p.step('tools/list', 'tools/list', async () => `${(await client.listTools(undefined, p.requestOptions())).tools.length} tools`);
      await p.step('ping', 'ping', async () => (await client.ping(p.requestOptions()), 'answered'));
      await stateChecks(p, client);
      const answers = answerCheck(p.log.exchanges);
      if (answers) p.add(answers);
      p.add(streamOpen(p));
    }
  } finally {
    await client.close().catch(() => undefined);
  }
  if (messageUrl && p.checks.some((c) => c.id === 'initialize' && c.status === 'pass')) p.add(await refusedCheck(p, 'after-close', messageUrl, 'alive-after-delete'));
  const forged = new URL(messageUrl ?? new URL('message', sseUrl));
  forged.searchParams.set('sessionId', randomUUID());
  p.add(await refusedCheck(p, 'forged-session', forged, 'unknown-id-accepted'));
  return p.result(messageUrl?.searchParams.get('sessionId') ?? undefined);
}

const isStreamGet = (e: Exchange): boolean => e.method === 'GET';

/** GET of the SSE endpoint, then `initialize` and `notifications/initialized` as POSTs; three checks. */
async function handshake(p: SessionProbe, client: Client, transport: SSEClientTransport): Promise<boolean> {
  let error: unknown;
  await client.connect(transport, p.requestOptions()).catch((err: unknown) => (error = err));
  const get = p.log.exchanges.find(isStreamGet);
  if (!get || get.network !== undefined || (get.status ?? 0) >= 400) {
    const check = get && get.network === undefined ? failure('sse-stream', 'endpoint-refused', describeExchange(get), get) : requestFailure('sse-stream', get, error);
    p.add(check);
    return false;
  }
  p.add(pass('sse-stream', `endpoint event received${get.replica ? ` on replica ${get.replica}` : ''}`, get));
  const init = p.log.last((e) => e.rpc === 'initialize');
  const initialized = p.log.last((e) => e.rpc === 'notifications/initialized');
  if (!initialized) {
    p.add(requestFailure('initialize', init, error));
    return false;
  }
  p.add(pass('initialize', 'answered on the SSE stream', init));
  if (error !== undefined) {
    p.add(requestFailure('initialized', initialized, error));
    return false;
  }
  p.add(pass('initialized', 'notifications/initialized accepted', initialized));
  return true;
}

/** The message endpoint the server announced: the URL of the first POST. */
function endpointOf(exchanges: readonly Exchange[], sseUrl: URL): URL | undefined {
  const post = exchanges.find((e) => e.method === 'POST');
  return post ? new URL(post.path, sseUrl) : undefined;
}

/** The SSE stream must still be open before the client closes it. */
function streamOpen(p: SessionProbe): CheckResult {
  const get = p.log.exchanges.find(isStreamGet)!;
  if (get.stream?.endedAt !== undefined) {
    return failure('stream', 'stream-cut', `the SSE stream ended after ${Math.round((get.stream.endedAt - get.at) / 1000)} s, before the client closed it`, get);
  }
  return pass('stream', `held for ${Math.round((p.run.clock() - get.at) / 1000)} s${get.replica ? ` on replica ${get.replica}` : ''}`, get);
}

/** A `ping` POSTed for a session that is gone or never was must be refused (4xx; a 2xx is retried for a grace period). */
async function refusedCheck(p: SessionProbe, id: string, url: URL, served: Symptom): Promise<CheckResult> {
  const until = p.run.clock() + CLOSE_GRACE_MS;
  let ex: Exchange;
  for (;;) {
    ({ ex } = await postRaw(p.log, url, { jsonrpc: '2.0', id: `mcp-migrate-probe-${id}`, method: 'ping' }));
    if (ex.status === undefined || ex.status >= 300 || p.run.clock() >= until) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  if (ex.status !== undefined && ex.status >= 400 && ex.status < 500) return pass(id, `refused: ${describeExchange(ex)}`, ex);
  if (ex.status !== undefined && ex.status < 300) return failure(id, served, `${describeExchange(ex)}: a session that is gone or never was accepted a message`, ex);
  return failure(id, classify(ex), `${describeExchange(ex)}; expected a 4xx refusal`, ex);
}
