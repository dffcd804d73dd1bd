/**
 * Runs one transform on a fixture copied into a temporary directory, as `apply` does: the analyzer
 * decides what it touches (`planApply`), and returns the rewritten text.
 *
 * A case is `fixtures/transforms/<id>/<case>/` with either `input.<ext>` and `expected.<ext>` (one file,
 * named `input<ext>` when run), or `input/` and `expected/` trees (several files: what a transform does
 * across files, and that the result for a file does not depend on the path analyzed).
 *
 * A case may hold `findings.json`: findings of rules that this build's analyzer may not have (each
 * `{ file, ruleId, category, fix, symbol, line, column, endLine, endColumn }`, file relative to the
 * case's input). The transform then runs (first pass of `apply`, `src/apply/pass.ts`) on the
 * analyzer's findings plus those it did not report itself: transforms work from the finding's node,
 * whichever rule reported it.
 */
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { analyze } from '../../src/analyzer/engine.js';
import type { Finding } from '../../src/analyzer/types.js';
import { planApply, selectTransforms } from '../../src/apply/engine.js';
import { runPass } from '../../src/apply/pass.js';
import { loadProject } from '../../src/analyzer/project.js';

export const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../fixtures/transforms');

export interface FixtureCase {
  transform: string;
  name: string;
  dir: string;
  /** `input.ts`/`input.js`, or the `input/` tree. */
  input: string;
  /** `expected.<ext>`, or the `expected/` tree. */
  expected: string;
  /** `.ts`/`.js` for one file; `''` for a tree. */
  ext: string;
  /** Synthetic findings (`findings.json`), if any. */
  findings?: Finding[];
}

export function fixtureCases(): FixtureCase[] {
  const out: FixtureCase[] = [];
  for (const transform of readdirSync(FIXTURES).sort()) {
    for (const name of readdirSync(path.join(FIXTURES, transform)).sort()) {
      const dir = path.join(FIXTURES, transform, name);
      const findingsFile = path.join(dir, 'findings.json');
      const findings = existsSync(findingsFile) ? (JSON.parse(readFileSync(findingsFile, 'utf8')) as Finding[]) : undefined;
      if (existsSync(path.join(dir, 'input')) && statSync(path.join(dir, 'input')).isDirectory()) {
        out.push({ transform, name, dir, input: path.join(dir, 'input'), expected: path.join(dir, 'expected'), ext: '', findings });
        continue;
      }
      const input = readdirSync(dir).find((f) => f.startsWith('input.'));
      if (!input) continue;
      const ext = path.extname(input);
      out.push({ transform, name, dir, input: path.join(dir, input), expected: path.join(dir, `expected${ext}`), ext, findings });
    }
  }
  return out;
}

/** Every file of a case's tree (or the one file), relative path → text. */
export function readTree(root: string, ext: string): Map<string, string> {
  const out = new Map<string, string>();
  if (ext) {
    out.set(`input${ext}`, readFileSync(root, 'utf8'));
    return out;
  }
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else out.set(path.relative(root, full).split(path.sep).join('/'), readFileSync(full, 'utf8'));
    }
  };
  walk(root);
  return out;
}

/**
 * What `transform` makes of a case's input (or of `source`, a file or tree laid out like it), as
 * relative path → text of every file; `analyzed` narrows the analyzed paths (relative, default the whole directory).
 */
export async function runTransform(transform: string, source: string, ext: string, options: { findings?: Finding[]; analyzed?: string[] } = {}): Promise<Map<string, string>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'mcp-migrate-transform-'));
  try {
    if (ext) cpSync(source, path.join(dir, `input${ext}`));
    else cpSync(source, dir, { recursive: true });
    const paths = (options.analyzed ?? ['.']).map((p) => path.join(dir, p));
    const texts = new Map<string, string>();
    for (const [rel, text] of readTree(ext ? path.join(dir, `input${ext}`) : dir, ext)) texts.set(rel, text);
    if (!options.findings) {
      const result = await planApply({ paths, cwd: dir, store: 'redis', transforms: [transform] });
      for (const c of result.changes) texts.set(path.relative(dir, c.absolute).split(path.sep).join('/'), c.after);
      return texts;
    }
    // Analyzer findings plus the synthetic ones it did not report, through one pass of the transform.
    const analysis = await analyze({ paths, cwd: dir });
    const rootRel = path.relative(dir, analysis.root);
    const injected = options.findings
      .map((f) => ({ ...f, file: path.posix.relative(rootRel.split(path.sep).join('/'), f.file) }))
      .filter((f) => !analysis.findings.some((a) => a.ruleId === f.ruleId && a.file === f.file && a.line === f.line && a.column === f.column));
    const original = new Map<string, string>();
    for (const sf of loadProject(paths, dir).files) original.set(path.resolve(sf.fileName), sf.text);
    const pass = runPass(analysis.root, original, [...analysis.findings, ...injected], selectTransforms([transform]));
    for (const [file, text] of pass.texts) texts.set(path.relative(dir, file).split(path.sep).join('/'), text);
    return texts;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
