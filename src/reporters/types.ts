import type { AnalysisResult, RuleMeta } from '../analyzer/types.js';

/** What a reporter may know besides the result. Everything is passed in; reporters read no global state. */
export interface ReporterContext {
  /** Emit ANSI colour codes (only `stylish` uses colour; the machine formats ignore it). */
  color: boolean;
  /** Metadata of every known rule (for SARIF `rules[]`, help texts and links). */
  rules: readonly RuleMeta[];
  /** Version of mcp-migrate that produced the result (`tool.version`, SARIF `tool.driver.version`). */
  version: string;
}

/**
 * A reporter renders an {@link AnalysisResult} as text. Pure: same input, same output; no I/O, no clock,
 * no environment. The returned string has no trailing newline; the CLI adds one when it writes it.
 */
export type Reporter = (result: AnalysisResult, ctx: ReporterContext) => string;
