import type { McpServing } from './serves-mcp.js';
import { coverLookup } from './cover.js';
import type { Finding, Verdict } from './types.js';

/**
 * The whole-server verdict, from the findings that are not informational (`note`s about
 * server-initiated requests do not decide it):
 * - `stateless`: nothing held per session in process; any replica can serve any request today.
 * - `rewritable`: every finding has a `transform:` fix; `mcp-migrate apply` externalizes the state.
 * - `proxy-replay`: the state is rebuilt by replaying the session's handshake (`initialize`,
 *   `notifications/initialized`, `logging/setLevel`, `resources/subscribe`), so `mcp-migrate proxy`
 *   in front of unmodified replicas is safe.
 * - `owner-routing`: hidden per-session state (timers, closures, task stores, module state written by
 *   handlers) that no replay rebuilds; run the proxy with owner affinity, or fix the `manual` findings.
 *
 * Finding nothing gives `stateless` only when the analyzed files serve MCP themselves
 * (`serves-mcp.ts`); code that hands the server to a dependency it did not read gets `owner-routing`,
 * with no deciding finding and a summary naming what it imports.
 *
 * Every finding of state a request writes counts, with its fix as the rules judged it: `stateless` and
 * `proxy-replay` are only given when nothing left is `manual` (and `rewritable` only when `apply` rewrites
 * every finding). Findings inside a bundled copy of the MCP SDK (`dependency` `@modelcontextprotocol/*`)
 * do not count: they are the SDK's own per-session bookkeeping (its transports' stream maps, the
 * `logging/setLevel` levels it keeps per session), which the application's use of the SDK decides and
 * which is reported where the application does it. A bundled framework's session state counts.
 *
 * A covered finding (`coveredBy`: the same piece of state as another finding) is decided by its cover,
 * whose fix it carries, and is not counted a second time.
 */
export function decideVerdict(findings: readonly Finding[], serving: McpServing = { serves: true, imports: [] }): Verdict {
  // A covered finding is its cover's state: the cover decides for both, with its fix. One whose cover is
  // not among `findings` (baselined or suppressed) decides on its own, with the fix it took from the cover.
  const cover = coverLookup(findings);
  const deciding = findings.map((f, i) => ({ f, i })).filter(({ f }) => decidesVerdict(f) && !cover(f));
  const pick = (pred: (f: Finding) => boolean) => deciding.filter(({ f }) => pred(f)).map(({ i }) => i);
  if (deciding.length === 0 && !serving.serves) {
    const from = serving.imports.length > 0 ? ` (it imports ${serving.imports.map((m) => `\`${m}\``).join(', ')})` : '';
    return {
      kind: 'owner-routing',
      summary: `Not shown stateless: the analyzed files hold no MCP server code (no MCP SDK or modelled framework, no MCP method handled), so the server is built in a dependency the analysis did not read${from}; analyze that code, or run the server behind \`mcp-migrate proxy\` (owner affinity).`,
      decidingFindings: [],
    };
  }
  if (deciding.length === 0) {
    return {
      kind: 'stateless',
      summary: 'Already stateless: no per-session state is held in process, so any replica can serve any request.',
      decidingFindings: [],
    };
  }
  const manual = pick((f) => f.fix === 'manual');
  if (manual.length > 0) {
    return {
      kind: 'owner-routing',
      summary: `Needs owner routing: ${manual.length} finding(s) hold hidden per-session state that handshake replay cannot rebuild; run \`mcp-migrate proxy\` (owner routing, its default), or \`mcp-migrate apply\` (its registry then serves each session on the replica that opened it where that state belongs to one session), or rewrite them by hand.`,
      decidingFindings: manual,
    };
  }
  const proxy = pick((f) => f.fix === 'proxy');
  if (proxy.length > 0) {
    return {
      kind: 'proxy-replay',
      summary: `Safe behind \`mcp-migrate proxy\`: the per-session state is rebuilt by handshake replay on any replica (${proxy.length} finding(s) need the proxy rather than a rewrite).`,
      decidingFindings: proxy,
    };
  }
  return {
    kind: 'rewritable',
    summary: `Rewritable by \`mcp-migrate apply --store redis\`: all ${deciding.length} finding(s) have a codemod that moves the state to a shared store.`,
    decidingFindings: deciding.map(({ i }) => i),
  };
}

/**
 * The verdict is not `stateless`, yet no finding decides it: the analyzed files hold no MCP server code
 * (`serves-mcp.ts`), so the server is built in code the analysis did not read. `analyze` and `apply`
 * exit 1 on it: exit 0 would promise a server the analysis never saw.
 */
export function notShownStateless(verdict: Verdict): boolean {
  return verdict.kind !== 'stateless' && verdict.decidingFindings.length === 0;
}

/**
 * Whether a finding is state that breaks round-robin and so decides the verdict (and `apply`'s "still
 * breaks" list): every finding but the informational server-initiated-request notes and the SDK's own
 * bookkeeping inside a bundled copy of it (see {@link decideVerdict}).
 */
export function decidesVerdict(f: Finding): boolean {
  return f.category !== 'server-initiated-request' && !isSdkInternal(f);
}

/** A finding inside a bundled copy of the MCP SDK itself. */
function isSdkInternal(f: Finding): boolean {
  return f.dependency?.name.startsWith('@modelcontextprotocol/') ?? false;
}
