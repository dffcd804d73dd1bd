/**
 * Protocol constants and small waiting helpers shared by every test: one copy of the `initialize`
 * params a raw test sends, and one bounded poll.
 */

/** The protocol revision raw tests negotiate unless they say otherwise (spec 2025-06-18). */
export const PROTOCOL_VERSION = '2025-06-18';

/** `initialize` params for raw JSON-RPC tests (spec §Lifecycle: protocolVersion, capabilities, clientInfo). */
export const INIT_PARAMS = {
  protocolVersion: PROTOCOL_VERSION,
  capabilities: {},
  clientInfo: { name: 'mcp-migrate-test', version: '1.0.0' },
};

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `check` every `intervalMs` (default 25 ms) until it returns true or `timeoutMs` (default 5 s) has
 * passed; resolves to the last result, so a caller can assert on it with its own message.
 */
export async function pollUntil(check: () => boolean | Promise<boolean>, timeoutMs = 5_000, intervalMs = 25): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(intervalMs);
  }
  return await check();
}

/**
 * A raw JSON-RPC POST in an existing session (`Mcp-Session-Id`, `MCP-Protocol-Version`, both accept types),
 * outside any client: to check what a server answers for a session id (404 once it is terminated).
 */
export async function postInSession(url: string, sessionId: string, protocolVersion: string | undefined, message: unknown, signal?: AbortSignal): Promise<Response> {
  return await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-session-id': sessionId,
      'mcp-protocol-version': protocolVersion ?? '2025-11-25',
    },
    body: JSON.stringify(message),
    signal,
  });
}
