import type { ProbeReport } from '../types.js';

/** What a probe reporter may know besides the report. Reporters read no global state. */
export interface ProbeReporterContext {
  /** Emit ANSI colour codes (stylish only). */
  color: boolean;
  /** mcp-migrate's version. */
  version: string;
}

/** Renders a {@link ProbeReport}. Pure: same input, same output; no I/O, no clock. No trailing newline. */
export type ProbeReporter = (report: ProbeReport, ctx: ProbeReporterContext) => string;
