/**
 * `mcp-migrate probe`: check a deployed MCP endpoint, through its own load balancer, for what breaks
 * sessions behind round-robin (docs/probe.md).
 */
export { runProbe, type ProbeHooks } from './run.js';
export { decideVerdict, causeOf } from './verdict.js';
export { CAUSES } from './causes.js';
export * from './options.js';
export * from './types.js';
export { probeReporters, PROBE_REPORTER_NAMES, PROBE_JSON_VERSION, type ProbeReporterName, type ProbeReporter } from './reporters/index.js';
