/** The probe reporters, by the name `--format` takes. An explicit map, so the choices are static. */
import { probeJson } from './json.js';
import { probeMarkdown } from './markdown.js';
import { probeStylish } from './stylish.js';
import type { ProbeReporter } from './types.js';

export type { ProbeReporter, ProbeReporterContext } from './types.js';
export { PROBE_JSON_VERSION } from './json.js';

export const probeReporters = {
  /** Terminal report: era, replicas, checks, verdict with causes and fixes (default). */
  stylish: probeStylish,
  /** The whole report as one JSON document (every session, check and exchange). */
  json: probeJson,
  /** A summary for a pull-request comment or a job summary. */
  markdown: probeMarkdown,
} as const satisfies Record<string, ProbeReporter>;

export type ProbeReporterName = keyof typeof probeReporters;
export const PROBE_REPORTER_NAMES = Object.keys(probeReporters) as ProbeReporterName[];
