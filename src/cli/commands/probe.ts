/**
 * `mcp-migrate probe <url>`: check a deployed MCP endpoint through its own load balancer (docs/probe.md).
 *
 * Output contract (as `analyze`): the report goes to stdout, or only to `--output FILE`; the progress
 * bar (a terminal only, never with `--format json`) and errors go to stderr. Exit codes: 0 sessions
 * survive (every check passed), 1 a check failed (an unreachable endpoint included) or `--timeout`
 * stopped the run, 2 usage or internal error.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { UsageError } from '../../analyzer/types.js';
import { DEFAULT_REPLICA_HEADER, parseEndpointUrl, parseHeaders, parseToolCall, resolveLegacySseUrl, type ProbeOptions } from '../../probe/options.js';
import { PROBE_REPORTER_NAMES, probeReporters, type ProbeReporterName } from '../../probe/reporters/index.js';
import { VERSION } from '../../version.js';
import { ExitCode } from '../exit-codes.js';

export interface ProbeArgs {
  url: string;
  sessions: number;
  concurrency: number;
  header?: string[];
  timeout: number;
  'request-timeout': number;
  era: 'auto' | 'legacy' | 'modern';
  'legacy-sse': boolean;
  'sse-url'?: string;
  write?: string;
  read?: string;
  reads: number;
  expect?: string;
  notify?: string;
  'notify-wait': number;
  'ask-wait': number;
  'body-bytes'?: number;
  hold: number;
  'replica-header': string;
  format: ProbeReporterName;
  output?: string;
  color?: boolean;
}

export const probeCommand: CommandModule<object, ProbeArgs> = {
  command: 'probe <url>',
  describe: 'Check a deployed MCP endpoint through its load balancer: do sessions survive round-robin, and if not, why',
  builder: (yargs: Argv<object>) =>
    yargs
      .positional('url', { describe: 'The MCP endpoint, e.g. https://mcp.example.com/mcp', type: 'string', demandOption: true })
      .option('sessions', { alias: 'n', describe: 'Sessions to open (and 2026-07-28 request series, when served)', type: 'number', default: 10 })
      .option('concurrency', { alias: 'c', describe: 'Sessions at once', type: 'number', default: 5 })
      .option('header', { alias: 'H', describe: "Add a request header, 'Name: value' (repeatable), e.g. for Authorization", type: 'string', array: true, requiresArg: true })
      .option('timeout', { describe: 'Bound on the whole run, in seconds; then exit 1 with what was seen', type: 'number', default: 120 })
      .option('request-timeout', { describe: 'Bound on one request, in seconds', type: 'number', default: 10 })
      .option('era', { describe: 'auto: what the endpoint serves (2025-era sessions, 2026-07-28 requests, or both); legacy or modern: only those checks', choices: ['auto', 'legacy', 'modern'] as const, default: 'auto' as const })
      .option('legacy-sse', { describe: 'Also check the legacy HTTP+SSE transport (2024-11-05) at /sse on the endpoint\'s origin', type: 'boolean', default: false })
      .option('sse-url', { describe: 'The legacy SSE endpoint, if not /sse (a URL, or a path relative to <url>); implies --legacy-sse', type: 'string', requiresArg: true })
      .option('write', { describe: "A tool call that sets state: 'TOOL {JSON args}'; {{session}} in the args becomes a value unique to the session", type: 'string', requiresArg: true })
      .option('read', { describe: "A tool call that reads it back: 'TOOL {JSON args}', sent --reads times, each its own request", type: 'string', requiresArg: true })
      .option('reads', { describe: 'How many times each session calls --read', type: 'number', default: 3 })
      .option('expect', { describe: 'Text every --read result must contain ({{session}} substituted). Default: the session\'s value when --write uses {{session}}, else the first read', type: 'string', requiresArg: true })
      .option('notify', { describe: "A tool call that makes the server send a notification on the GET stream: 'TOOL {JSON args}'", type: 'string', requiresArg: true })
      .option('notify-wait', { describe: 'Seconds to wait for a message on the held GET stream after the trigger', type: 'number', default: 2 })
      .option('ask-wait', { describe: 'Seconds each session stays open after its handshake for requests the server sends on its own (roots/list, sampling), so their answers are checked', type: 'number', default: 2 })
      .option('body-bytes', { describe: 'Also send a ping padded to this many bytes (finds balancer body limits, e.g. 2000000)', type: 'number', requiresArg: true })
      .option('hold', { describe: 'Seconds each session idles with its GET stream open before it ends (finds idle timeouts, e.g. 65)', type: 'number', default: 0 })
      .option('replica-header', { describe: 'Response header naming the replica that answered', type: 'string', default: DEFAULT_REPLICA_HEADER })
      .option('format', { alias: 'f', describe: 'Report format', choices: PROBE_REPORTER_NAMES, default: 'stylish' as ProbeReporterName })
      .option('output', { alias: 'o', describe: 'Write the report to this file instead of stdout', type: 'string', normalize: true, requiresArg: true })
      .option('color', { describe: 'Colour the stylish report; --no-color disables it. Default: on for a terminal without NO_COLOR', type: 'boolean', defaultDescription: 'auto' })
      .example('$0 probe https://mcp.example.com/mcp', 'Open 10 sessions through the balancer; exit 1 with the likely cause if any check fails')
      .example("$0 probe https://mcp.example.com/mcp -H 'Authorization: Bearer …' --format json", 'With credentials, machine-readable')
      .example('$0 probe http://lb/mcp --write \'cd {"path": "/srv/{{session}}"}\' --read \'pwd\'', 'Tool-written state must be read back on every replica')
      .example('$0 probe http://lb/mcp --legacy-sse --hold 65', 'Legacy HTTP+SSE too; hold streams past a 60 s idle timeout')
      .epilog('Exit codes: 0 sessions survive round-robin (every check passed); 1 a check failed, the endpoint was unreachable, or --timeout was reached; 2 usage or internal error. See docs/probe.md.') as unknown as Argv<ProbeArgs>,
  handler: async (argv) => {
    process.exitCode = await runProbeCommand(argv);
  },
};

/** Validates the arguments into {@link ProbeOptions}. @throws UsageError */
export function probeOptionsFromArgs(a: ProbeArgs): ProbeOptions {
  const url = parseEndpointUrl(a.url);
  const count = (flag: string, v: number, min: number): number => {
    if (!Number.isInteger(v) || v < min) throw new UsageError(`--${flag} must be a whole number ≥ ${min}, got ${v}`);
    return v;
  };
  const seconds = (flag: string, v: number, min: number): number => {
    if (!Number.isFinite(v) || v < min) throw new UsageError(`--${flag} must be a number of seconds ≥ ${min}, got ${v}`);
    return Math.round(v * 1000);
  };
  const legacySse = a['sse-url'] !== undefined ? resolveLegacySseUrl(a['sse-url'], url) : a['legacy-sse'] ? resolveLegacySseUrl('', url) : undefined;
  if (a.expect !== undefined && a.read === undefined) throw new UsageError('--expect needs --read');
  const replicaHeader = a['replica-header'].trim().toLowerCase();
  if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(replicaHeader)) throw new UsageError(`--replica-header must be a header name, got "${a['replica-header']}"`);
  return {
    url,
    sessions: count('sessions', a.sessions, 1),
    concurrency: count('concurrency', a.concurrency, 1),
    timeoutMs: seconds('timeout', a.timeout, 1),
    requestTimeoutMs: seconds('request-timeout', a['request-timeout'], 0.1),
    era: a.era,
    headers: parseHeaders(a.header ?? []),
    replicaHeader,
    ...(legacySse ? { legacySseUrl: legacySse } : {}),
    ...(a.write !== undefined ? { write: parseToolCall('--write', a.write) } : {}),
    ...(a.read !== undefined ? { read: parseToolCall('--read', a.read) } : {}),
    reads: count('reads', a.reads, 1),
    ...(a.expect !== undefined ? { expect: a.expect } : {}),
    ...(a.notify !== undefined ? { notify: parseToolCall('--notify', a.notify) } : {}),
    notifyWaitMs: seconds('notify-wait', a['notify-wait'], 0),
    askWaitMs: seconds('ask-wait', a['ask-wait'], 0),
    ...(a['body-bytes'] !== undefined ? { bodyBytes: count('body-bytes', a['body-bytes'], 1) } : {}),
    holdMs: seconds('hold', a.hold, 0),
  };
}

/** Runs one `probe` invocation and returns its exit code. Never throws. */
export async function runProbeCommand(args: ProbeArgs): Promise<ExitCode> {
  let options: ProbeOptions;
  try {
    options = probeOptionsFromArgs(args);
  } catch (err) {
    return fail(err);
  }
  // Loaded on demand: the SDK clients are needed by probe only.
  const { runProbe } = await import('../../probe/run.js');
  const progress = await createProgress(args.format !== 'json' && process.stderr.isTTY === true);
  try {
    const report = await runProbe(options, VERSION, { onProgress: progress.update });
    progress.stop();
    const color = args.color ?? (args.output === undefined && process.stdout.isTTY === true && !process.env.NO_COLOR);
    const text = `${probeReporters[args.format](report, { color, version: VERSION })}\n`;
    if (args.output !== undefined) {
      const file = resolve(process.cwd(), args.output);
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, text, 'utf8');
    } else {
      await new Promise<void>((done, failed) => process.stdout.write(text, (e) => (e ? failed(e) : done())));
    }
    return report.verdict.survives ? ExitCode.Ok : ExitCode.Findings;
  } catch (err) {
    progress.stop();
    return fail(err);
  }
}

function fail(err: unknown): ExitCode {
  if (err instanceof UsageError) process.stderr.write(`mcp-migrate probe: ${err.message}\nRun with --help for usage.\n`);
  else process.stderr.write(`mcp-migrate probe: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return ExitCode.Usage;
}

/** A `cli-progress` bar on a terminal's stderr: sessions done of planned. Does nothing when `enabled` is false. */
async function createProgress(enabled: boolean): Promise<{ update: (done: number, total: number) => void; stop: () => void }> {
  if (!enabled) return { update: () => undefined, stop: () => undefined };
  const { default: cliProgress } = await import('cli-progress');
  const bar = new cliProgress.SingleBar({ format: 'mcp-migrate probe [{bar}] {value}/{total} sessions', stream: process.stderr, clearOnComplete: true, hideCursor: true }, cliProgress.Presets.shades_classic);
  let started = false;
  return {
    update: (done, total) => {
      if (total === 0) return;
      if (!started) bar.start(total, done);
      else bar.update(done);
      started = true;
    },
    stop: () => {
      if (started) bar.stop();
      started = false;
    },
  };
}
