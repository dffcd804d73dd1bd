/**
 * The analysis engine: loads the program, computes session-id flow and session-keyed containers,
 * walks every file once dispatching nodes to the rules, and builds the {@link AnalysisResult}.
 * Analysis never changes code (transforms run afterwards, on a fresh program).
 */
import { performance } from 'node:perf_hooks';
import { ts } from 'ts-morph';
import { rules as allRules } from '../rules/index.js';
import type { Rule, RuleContext } from '../rules/create-rule.js';
import { bundleSegments, segmentAt, type BundleSegment, type Dependency } from './bundle.js';
import { SessionContainerIndex, type SessionContainer } from './containers.js';
import { loadProject, rel } from './project.js';
import { SessionFlow } from './session-flow.js';
import { sessionScope } from './session-scope.js';
import { CATEGORIES, SEVERITIES, type AnalysisResult, type AnalyzeOptions, type Category, type Finding, type FindingRef, type Severity } from './types.js';
import { findingRef, refKey } from './cover.js';
import { servesMcp } from './serves-mcp.js';
import { decideVerdict } from './verdict.js';

export interface EngineOptions extends AnalyzeOptions {
  /** Rules to run; default: every registered rule. */
  rules?: readonly Rule[];
}

/**
 * Analyzes the MCP server under `options.paths`.
 * @throws UsageError for a missing path or when no source file is found.
 */
export async function analyze(options: EngineOptions): Promise<AnalysisResult> {
  return analyzeSync(options);
}

/** {@link analyze}, synchronously (for hosts whose rules cannot await, such as ESLint). */
export function analyzeSync(options: EngineOptions): AnalysisResult {
  const started = performance.now();
  const loaded = loadProject(options.paths, options.cwd, options.fileFilter, options.texts);
  const { root, checker, files, warnings } = loaded;
  const analyzed = new Set(files);
  const analyzedNames = new Set(files.map((f) => f.fileName.replace(/\.[cm]?[jt]sx?$/, '')));
  // A declaration file beside an analyzed source (`x.d.ts` next to `x.js`) stands for that source.
  const isProjectFile = (sf: ts.SourceFile): boolean =>
    analyzed.has(sf) || (sf.isDeclarationFile && analyzedNames.has(sf.fileName.replace(/\.d\.[cm]?ts$/, '')));
  const bundles = new Map<ts.SourceFile, BundleSegment[]>();
  for (const sf of files) {
    const segments = /\.[cm]?jsx?$/.test(sf.fileName) ? bundleSegments(sf.fileName, sf.text) : undefined;
    if (segments) bundles.set(sf, segments);
  }
  const dependencyAt = (node: ts.Node): Dependency | undefined => {
    const segments = bundles.get(node.getSourceFile());
    return segments && segmentAt(segments, node.pos)?.dependency;
  };
  // Bundled third-party modules with no session-id source in them cannot hold session state the flow
  // would find: left out of the flow and of the rules' walk, which keeps a large bundle close to the
  // cost of parsing it.
  const skip = (statement: ts.Statement): boolean => {
    const segments = bundles.get(statement.getSourceFile());
    const segment = segments && segmentAt(segments, statement.getStart());
    return !!segment?.dependency && !holdsSessionSource(segment, statement.getSourceFile().text);
  };
  const flow = new SessionFlow(checker, files, bundles.size > 0 ? skip : undefined);
  // Ids minted once per session (a per-session scope id) stand for the session in the data flow.
  flow.addSources(sessionScope(flow).sessionIds);
  // So do the function objects per-session code makes and passes on (a per-session notifier used as a key).
  flow.addSourceSymbols(sessionScope(flow).sessionHandles);
  const index = new SessionContainerIndex(flow);
  let containers: SessionContainer[] | undefined;

  const findings: Finding[] = [];
  const seen = new Map<string, Finding>();
  // Findings by rule, file and start, so a covered finding can find its cover (reported before it).
  const byRef = new Map<string, Finding>();
  const coverAt = (r: FindingRef): Finding | undefined => byRef.get(refKey(r));
  const active = options.rules ?? allRules;
  const dispatch = new Map<ts.SyntaxKind, Array<(node: ts.Node) => void>>();
  const ends: Array<() => void> = [];

  for (const rule of active) {
    const ctx: RuleContext = {
      flow,
      checker,
      containers: () => {
        if (!containers) throw new Error('containers() is only available in end()');
        return containers;
      },
      isAnalyzed: isProjectFile,
      dependencyAt,
      report: ({ node, symbol, message, fix, severity, coveredBy }) => {
        const sf = node.getSourceFile();
        if (!analyzed.has(sf)) return undefined;
        const start = node.getStart(sf);
        const key = `${rule.meta.id}\0${sf.fileName}\0${start}`;
        const known = seen.get(key);
        if (known) return findingRef(known);
        const s = sf.getLineAndCharacterOfPosition(start);
        const e = sf.getLineAndCharacterOfPosition(node.getEnd());
        const dependency = dependencyAt(node);
        const cover = coveredBy && coverAt(coveredBy);
        const chosen = cover?.fix ?? fix ?? rule.meta.fix;
        const finding: Finding = {
          ruleId: rule.meta.id,
          category: rule.meta.category,
          severity: severity ?? rule.meta.severity,
          file: rel(root, sf.fileName),
          line: s.line + 1,
          column: s.character + 1,
          endLine: e.line + 1,
          endColumn: e.character + 1,
          symbol,
          message,
          // Vendored code is never rewritten: what a codemod would fix there needs a manual change or the proxy.
          fix: dependency && chosen.startsWith('transform:') ? 'manual' : chosen,
          ...(dependency ? { dependency } : {}),
          ...(cover ? { coveredBy: cover.coveredBy ?? findingRef(cover) } : {}),
        };
        seen.set(key, finding);
        byRef.set(refKey(finding), finding);
        findings.push(finding);
        return findingRef(finding);
      },
    };
    const visitors = rule.create(ctx);
    for (const [kind, fn] of Object.entries(visitors)) {
      if (kind === 'end') continue;
      const k = Number(kind) as ts.SyntaxKind;
      const list = dispatch.get(k) ?? [];
      list.push(fn as (node: ts.Node) => void);
      dispatch.set(k, list);
    }
    if (visitors.end) ends.push(visitors.end);
  }

  files.forEach((file, i) => {
    const bundled = bundles.has(file);
    const visit = (node: ts.Node): void => {
      if (bundled && node.parent === file && skip(node as ts.Statement)) return;
      index.visit(node);
      const handlers = dispatch.get(node.kind);
      if (handlers) for (const h of handlers) h(node);
      ts.forEachChild(node, visit);
    };
    visit(file);
    options.onProgress?.(i + 1, files.length);
  });
  containers = index.finish();
  for (const end of ends) end();

  dropCoveredDuplicates(findings);
  findings.sort(
    (a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.column - b.column || a.ruleId.localeCompare(b.ruleId),
  );
  const byCategory = Object.fromEntries(CATEGORIES.map((c) => [c, 0])) as Record<Category, number>;
  const bySeverity = Object.fromEntries(SEVERITIES.map((s) => [s, 0])) as Record<Severity, number>;
  for (const f of findings) {
    byCategory[f.category]++;
    bySeverity[f.severity]++;
  }
  return {
    root,
    summary: { files: files.length, findings: findings.length, byCategory, bySeverity, durationMs: Math.round(performance.now() - started) },
    verdict: decideVerdict(findings, servesMcp(files)),
    findings,
    warnings,
    files: files.map((f) => rel(root, f.fileName)),
  };
}

/** Text that only a module touching MCP sessions contains: a session-id property or header, a transport's session options. */
const SESSION_SOURCE = /session_?id|mcp-session-id|onsession(initialized|closed)|SSEServerTransport|EventStore/i;
const sourceMemo = new WeakMap<BundleSegment, boolean>();

function holdsSessionSource(segment: BundleSegment, text: string): boolean {
  let v = sourceMemo.get(segment);
  if (v === undefined) {
    v = SESSION_SOURCE.test(text.slice(segment.start, segment.end));
    sourceMemo.set(segment, v);
  }
  return v;
}

/**
 * One piece of state, one finding: a covered finding (`coveredBy`) at the very node another rule already
 * reports on its own says nothing new (server-everything's `initializeTimeout`: per-session closure state,
 * and the handle of the timer reported where it starts), so it is removed in place. No finding points at
 * a covered one (covers collapse to the first finding of a chain), so nothing is left dangling.
 */
function dropCoveredDuplicates(findings: Finding[]): void {
  const at = (f: Finding): string => `${f.file}\0${f.line}\0${f.column}`;
  const own = new Set(findings.filter((f) => !f.coveredBy).map(at));
  const kept = findings.filter((f) => !f.coveredBy || !own.has(at(f)));
  findings.splice(0, findings.length, ...kept);
}
