/** Process exit codes, as in ESLint's CLI. */
export const ExitCode = {
  /** Nothing reached the `--fail-on` threshold. */
  Ok: 0,
  /** At least one finding reached the `--fail-on` threshold. */
  Findings: 1,
  /** Usage or configuration error: missing path, no source files, bad option. */
  Usage: 2,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];
