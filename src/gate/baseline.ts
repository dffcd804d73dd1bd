/**
 * Baselines: record today's findings once (`--write-baseline FILE`), then report only new ones
 * (`--baseline FILE`), so a gate can be switched on for a server that already holds session state.
 *
 * A finding is identified by rule id, file and symbol, plus an occurrence index (0, 1, …) among the
 * findings sharing all three, in file order. Line numbers play no part: editing unrelated code above a
 * finding does not make it new. The file format (version {@link BASELINE_VERSION}):
 *
 * ```json
 * {
 *   "version": 1,
 *   "tool": "mcp-migrate",
 *   "findings": [
 *     { "ruleId": "no-session-transport-registry", "file": "src/server.ts", "symbol": "transports", "occurrence": 0 }
 *   ]
 * }
 * ```
 *
 * Entries are sorted by file, rule id, symbol and occurrence; paths are relative to the analyzed root,
 * POSIX. The same findings always give the same bytes, so the file diffs cleanly in review.
 */
import { Ajv } from 'ajv';
import { UsageError, type Finding } from '../analyzer/types.js';
import { compareFindings, compareStrings } from '../reporters/describe.js';
import { TOOL_NAME } from '../version.js';

/** Version of the baseline file format; bumped on any incompatible change. */
export const BASELINE_VERSION = 1;

export interface BaselineEntry {
  ruleId: string;
  /** Relative to the analyzed root, POSIX. */
  file: string;
  symbol: string;
  /** 0 for the first finding with this rule id, file and symbol (in file order), 1 for the second, … */
  occurrence: number;
}

export interface Baseline {
  version: typeof BASELINE_VERSION;
  tool: string;
  findings: BaselineEntry[];
}

export interface BaselineOutcome {
  /** Findings not in the baseline: the ones to report. */
  findings: Finding[];
  /** Findings the baseline already records. */
  baselined: number;
  /** Baseline entries no finding matched any more (fixed since). */
  stale: BaselineEntry[];
}

const validateBaseline = new Ajv({ allErrors: true }).compile<Baseline>({
  type: 'object',
  required: ['version', 'findings'],
  properties: {
    version: { const: BASELINE_VERSION },
    tool: { type: 'string' },
    findings: {
      type: 'array',
      items: {
        type: 'object',
        required: ['ruleId', 'file', 'symbol', 'occurrence'],
        additionalProperties: false,
        properties: {
          ruleId: { type: 'string', minLength: 1 },
          file: { type: 'string', minLength: 1 },
          symbol: { type: 'string' },
          occurrence: { type: 'integer', minimum: 0 },
        },
      },
    },
  },
});

/** Each finding paired with its baseline identity, in file order. */
export function identify(findings: readonly Finding[]): Array<{ finding: Finding; entry: BaselineEntry }> {
  const counts = new Map<string, number>();
  return [...findings].sort(compareFindings).map((finding) => {
    const key = `${finding.ruleId}\0${finding.file}\0${finding.symbol}`;
    const occurrence = counts.get(key) ?? 0;
    counts.set(key, occurrence + 1);
    return { finding, entry: { ruleId: finding.ruleId, file: finding.file, symbol: finding.symbol, occurrence } };
  });
}

/** The baseline recording `findings`. */
export function createBaseline(findings: readonly Finding[]): Baseline {
  return { version: BASELINE_VERSION, tool: TOOL_NAME, findings: identify(findings).map((x) => x.entry).sort(compareEntries) };
}

/** The baseline file's text: pretty-printed JSON, sorted, with a final newline. */
export function serializeBaseline(baseline: Baseline): string {
  const findings = [...baseline.findings].sort(compareEntries).map((e) => ({ ruleId: e.ruleId, file: e.file, symbol: e.symbol, occurrence: e.occurrence }));
  return `${JSON.stringify({ version: baseline.version, tool: baseline.tool, findings }, null, 2)}\n`;
}

/**
 * Parses a baseline file's text.
 * @param label names the file in messages.
 * @throws UsageError for invalid JSON, an unknown version or a malformed entry.
 */
export function parseBaseline(text: string, label: string): Baseline {
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch (err) {
    throw new UsageError(`baseline ${label} is not valid JSON: ${(err as Error).message}`);
  }
  const version = (value as { version?: unknown } | null)?.version;
  if (value && typeof value === 'object' && version !== undefined && version !== BASELINE_VERSION) {
    throw new UsageError(`baseline ${label} has format version ${JSON.stringify(version)}; this mcp-migrate reads version ${BASELINE_VERSION}: rewrite it with --write-baseline`);
  }
  if (!validateBaseline(value)) {
    const first = validateBaseline.errors?.[0];
    throw new UsageError(`baseline ${label} is not an mcp-migrate baseline: ${first ? `${first.instancePath || '(root)'} ${first.message}` : 'invalid'}`);
  }
  return value;
}

/** Splits `findings` into new ones and those the baseline records; lists entries that no longer occur. */
export function applyBaseline(findings: readonly Finding[], baseline: Baseline): BaselineOutcome {
  const known = new Map(baseline.findings.map((e) => [entryKey(e), e]));
  const matched = new Set<string>();
  const fresh = new Set<Finding>();
  for (const { finding, entry } of identify(findings)) {
    const key = entryKey(entry);
    if (known.has(key)) matched.add(key);
    else fresh.add(finding);
  }
  return {
    findings: findings.filter((f) => fresh.has(f)),
    baselined: findings.length - fresh.size,
    stale: baseline.findings.filter((e) => !matched.has(entryKey(e))).sort(compareEntries),
  };
}

function entryKey(e: BaselineEntry): string {
  return `${e.ruleId}\0${e.file}\0${e.symbol}\0${e.occurrence}`;
}

function compareEntries(a: BaselineEntry, b: BaselineEntry): number {
  return compareStrings(a.file, b.file) || compareStrings(a.ruleId, b.ruleId) || compareStrings(a.symbol, b.symbol) || a.occurrence - b.occurrence;
}
