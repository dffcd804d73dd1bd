/**
 * `json`: the whole report as one JSON document, versioned by {@link PROBE_JSON_VERSION} (bumped on any
 * incompatible change; adding a field is compatible). Keys in a fixed order: verdict first.
 */
import { TOOL_NAME } from '../../version.js';
import { tallyChecks } from './describe.js';
import type { ProbeReporter } from './types.js';

export const PROBE_JSON_VERSION = 1;

export const probeJson: ProbeReporter = (report, ctx) =>
  JSON.stringify(
    {
      version: PROBE_JSON_VERSION,
      tool: { name: TOOL_NAME, version: ctx.version },
      url: report.url,
      verdict: report.verdict,
      era: report.era,
      spread: report.spread,
      checks: tallyChecks(report),
      ...(report.incomplete ? { incomplete: report.incomplete } : {}),
      options: report.options,
      durationMs: report.durationMs,
      sessions: report.sessions,
    },
    null,
    2,
  );
