import { ErrorCode } from '@mcp-migrate/runtime';

/**
 * SSE events with a JSON-RPC error for each request in `body` (a JSON-RPC message or batch) that has
 * no response among the `data:` lines of `relayed`; `undefined` if either cannot be read.
 */
export function unansweredErrors(body: Buffer, relayed: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    return undefined;
  }
  const ids: (string | number)[] = [];
  for (const m of Array.isArray(parsed) ? parsed : [parsed]) {
    const id = (m as { id?: unknown; method?: unknown } | null)?.id;
    if ((typeof id === 'string' || typeof id === 'number') && typeof (m as { method?: unknown }).method === 'string') ids.push(id);
  }
  const answered = new Set<string | number>();
  for (const line of relayed.split('\n')) {
    if (!line.startsWith('data:')) continue;
    try {
      const m = JSON.parse(line.slice(5)) as { id?: unknown; method?: unknown; result?: unknown; error?: unknown };
      if ((typeof m.id === 'string' || typeof m.id === 'number') && m.method === undefined && ('result' in m || 'error' in m)) answered.add(m.id);
    } catch {
      // an event cut off mid-line
    }
  }
  const missing = ids.filter((id) => !answered.has(id));
  // A blank line first ends an event the owner may have left half-written.
  let out = relayed.endsWith('\n\n') || relayed.length === 0 ? '' : '\n\n';
  for (const id of missing) {
    const error = { jsonrpc: '2.0', id, error: { code: ErrorCode.InternalError, message: 'Internal error: the replica serving this session was lost while answering; the request may or may not have run' } };
    out += `event: message\ndata: ${JSON.stringify(error)}\n\n`;
  }
  return out;
}
