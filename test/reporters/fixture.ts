/**
 * A synthetic {@link AnalysisResult} for reporter tests: three findings (one per severity) over two
 * files, a warning, and the rule metadata they refer to. Reporters are pure, so no engine is involved.
 */
import type { AnalysisResult, Finding, RuleMeta } from '../../src/analyzer/types.js';
import type { ReporterContext } from '../../src/reporters/index.js';

export const RULES: RuleMeta[] = [
  {
    id: 'session-transport-map',
    category: 'session-registry',
    severity: 'error',
    description: 'Transports kept in a module-scope map keyed by session id',
    fix: 'transform:externalize-transport-map',
    docsUrl: 'https://example.test/docs/rules/session-transport-map.md',
  },
  {
    id: 'session-keyed-map',
    category: 'session-keyed-state',
    severity: 'warning',
    description: 'Per-session data in a Map keyed by session id',
    fix: 'transform:externalize-session-map',
    docsUrl: 'https://example.test/docs/rules/session-keyed-map.md',
  },
  {
    id: 'server-initiated-request',
    category: 'server-initiated-request',
    severity: 'note',
    description: 'Server-to-client request whose response must reach the same replica',
    fix: 'proxy',
    docsUrl: 'https://example.test/docs/rules/server-initiated-request.md',
  },
];

export const FINDINGS: Finding[] = [
  {
    ruleId: 'session-transport-map',
    category: 'session-registry',
    severity: 'error',
    file: 'src/server.ts',
    line: 3,
    column: 7,
    endLine: 3,
    endColumn: 17,
    symbol: 'transports',
    message: '`transports` keeps one transport per session in process memory; another replica cannot find it.',
    fix: 'transform:externalize-transport-map',
  },
  {
    ruleId: 'session-keyed-map',
    category: 'session-keyed-state',
    severity: 'warning',
    file: 'src/server.ts',
    line: 12,
    column: 14,
    endLine: 12,
    endColumn: 22,
    symbol: 'sessions',
    message: '`sessions` holds per-session data in a Map; it is lost when a request lands on another replica.',
    fix: 'transform:externalize-session-map',
  },
  {
    ruleId: 'server-initiated-request',
    category: 'server-initiated-request',
    severity: 'note',
    file: 'src/tools/ask user.ts',
    line: 40,
    column: 5,
    endLine: 42,
    endColumn: 6,
    symbol: 'elicitInput',
    message: '`elicitInput` waits for a client response that may be routed to another replica.',
    fix: 'manual',
  },
];

/** A fresh copy each call, so a test may mutate it. */
export function makeResult(overrides: Partial<AnalysisResult> = {}): AnalysisResult {
  const findings = structuredClone(FINDINGS);
  return {
    root: '/home/dev/my-server',
    summary: {
      files: 5,
      findings: findings.length,
      byCategory: {
        'session-registry': 1,
        'session-keyed-state': 1,
        'stateful-transport': 0,
        'global-connection-state': 0,
        'server-initiated-request': 1,
      },
      bySeverity: { error: 1, warning: 1, note: 1 },
      durationMs: 123,
    },
    verdict: {
      kind: 'owner-routing',
      summary: 'Needs owner routing: `elicitInput` waits for a response only this replica can receive.',
      decidingFindings: [2],
    },
    findings,
    warnings: [{ file: 'src/broken.ts', message: 'does not parse; skipped' }],
    ...overrides,
  };
}

/** An empty, stateless result. */
export function emptyResult(): AnalysisResult {
  return makeResult({
    findings: [],
    summary: {
      files: 4,
      findings: 0,
      byCategory: {
        'session-registry': 0,
        'session-keyed-state': 0,
        'stateful-transport': 0,
        'global-connection-state': 0,
        'server-initiated-request': 0,
      },
      bySeverity: { error: 0, warning: 0, note: 0 },
      durationMs: 7,
    },
    verdict: { kind: 'stateless', summary: 'No per-session state is held in process.', decidingFindings: [] },
    warnings: [],
  });
}

export function ctx(overrides: Partial<ReporterContext> = {}): ReporterContext {
  return { color: false, rules: RULES, version: '9.8.7', ...overrides };
}

/** Reverses the findings and remaps the verdict's indices, so reporters must sort on their own. */
export function shuffled(result: AnalysisResult): AnalysisResult {
  const n = result.findings.length;
  return {
    ...result,
    findings: [...result.findings].reverse(),
    verdict: { ...result.verdict, decidingFindings: result.verdict.decidingFindings.map((i) => n - 1 - i) },
  };
}

/**
 * The same result, as if the server were one bundle: the session map is in a bundled framework (with a
 * version), the transport map in a bundled package whose version the bundle does not say.
 */
export function bundledResult(): AnalysisResult {
  const result = makeResult();
  result.findings[0]!.dependency = { name: 'mcp-router' };
  result.findings[1]!.dependency = { name: '@acme/mcp-framework', version: '2.1.0' };
  return result;
}
