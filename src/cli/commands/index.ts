import type { CommandModule } from 'yargs';
import { analyzeCommand } from './analyze.js';
import { applyCommand } from './apply.js';
import { probeCommand } from './probe.js';
import { proxyCommand } from './proxy.js';

/**
 * Every `mcp-migrate` command, in `--help` order. An explicit list, not a directory scan, so the
 * bundle is static and the order is deliberate: analyze first (what to do), then the two ways to do it,
 * then probe (check a deployment).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [analyzeCommand, applyCommand, proxyCommand, probeCommand];
