/**
 * The reporters, by the name `--format` takes. An explicit map rather than a directory scan, so the
 * set is static and `--format` choices and help are derived from it.
 */
import { github } from './github.js';
import { json } from './json.js';
import { markdown } from './markdown.js';
import { sarif } from './sarif.js';
import { stylish } from './stylish.js';
import type { Reporter } from './types.js';

export type { Reporter, ReporterContext } from './types.js';
export type { JsonReport } from './json.js';
export { JSON_REPORT_VERSION } from './json.js';

export const reporters = {
  /** Terminal report grouped by file, with a summary and the verdict (default). */
  stylish,
  /** One JSON document, see {@link JsonReport}. */
  json,
  /** SARIF 2.1.0, for code-scanning upload. */
  sarif,
  /** GitHub Actions workflow commands: one annotation per finding. */
  github,
  /** A Markdown summary for a pull-request comment or the job summary. */
  markdown,
} as const satisfies Record<string, Reporter>;

export type ReporterName = keyof typeof reporters;

/** The `--format` choices, in help order. */
export const REPORTER_NAMES = Object.keys(reporters) as ReporterName[];

/** One line per reporter for `--help`. */
export const REPORTER_DESCRIPTIONS: Record<ReporterName, string> = {
  stylish: 'human-readable, grouped by file, with summary and verdict',
  json: 'one JSON document, output format version 1',
  sarif: 'SARIF 2.1.0 for code scanning, e.g. GitHub upload-sarif',
  github: 'GitHub Actions workflow annotations, one per finding',
  markdown: 'Markdown summary with a table of findings, for a pull-request comment',
};
