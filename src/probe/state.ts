/**
 * The `write` and `read` checks: state a tool writes in one request must be read back by the same
 * session's later requests, whichever replica serves them. Each read is its own request, so behind
 * round-robin they land on different replicas.
 *
 * What a read must return: `--expect` (with `{{session}}` substituted) when given; else the session's
 * own value when the write's arguments carry `{{session}}`; else the same text as the session's first read.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SESSION_PLACEHOLDER, tokenSessions, toolArguments, type ToolCallSpec } from './options.js';
import { CheckFailure, toolText, type SessionProbe } from './step.js';
import { skip } from './checks.js';

/** Runs the write (if any) and the reads (if any) of one session with an SDK v1 client. */
export async function stateChecks(p: SessionProbe, client: Client): Promise<void> {
  const { write, read, reads, expect } = p.run.opts;
  let writeReplica: string | undefined;
  if (write) {
    const ok = await p.step('write', 'tools/call', async () => `${write.name} → "${await call(p, client, write)}"`);
    writeReplica = p.checks.at(-1)?.replica;
    if (!ok) {
      if (read) p.add(skip('read', 'not run: the write failed'));
      return;
    }
  }
  if (!read) return;
  const expected = expect !== undefined ? expect.split(SESSION_PLACEHOLDER).join(p.token) : write?.argumentsJson.includes(SESSION_PLACEHOLDER) ? p.token : undefined;
  let first: string | undefined;
  for (let k = 1; k <= reads; k += 1) {
    await p.step('read', 'tools/call', async () => {
      const text = await call(p, client, read);
      first ??= text;
      const ok = expected !== undefined ? text.includes(expected) : text === first;
      const what = `read ${k}/${reads}: ${read.name} → "${text}"`;
      if (ok) return what;
      const others = tokenSessions(text, p.run.runId).filter((i) => i !== p.index);
      const replica = p.log.last((e) => e.rpc === 'tools/call')?.replica;
      const ambiguous = others.length > 0 && replica === undefined && p.run.opts.concurrency > 1;
      const note = others.length > 0 ? ` (session ${others[0]}'s value)` : '';
      throw new CheckFailure('state-mismatch', `${what}, expected ${expected !== undefined ? `"${expected}"` : `"${first}" (the first read)`}${note}`, {
        state: { ...(writeReplica !== undefined ? { writeReplica } : {}), otherSession: others.length > 0, ...(ambiguous ? { ambiguous } : {}) },
      });
    });
  }
}

/** Calls the tool with the session's arguments; a result with `isError` fails the check. */
async function call(p: SessionProbe, client: Client, spec: ToolCallSpec): Promise<string> {
  const result = await client.callTool({ name: spec.name, arguments: toolArguments(spec, p.token) }, undefined, p.requestOptions());
  const text = toolText(result);
  if (result.isError) throw new CheckFailure('rpc-error', `${spec.name} returned an error result: "${text}"`);
  return text;
}
