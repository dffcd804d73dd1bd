import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { parseListen, proxyConfigFromArgs, type ProxyArgs } from '../../src/cli/commands/proxy.js';
import { assertCliBuilt, CLI_ENTRY, EVERYTHING_STDIO_COMMAND, getFreePort, REPO_ROOT, stopAllProcesses } from '../helpers/index.js';
import { connectClient, isAlive, pollUntil } from '../helpers/in-process-proxy.js';

describe('parseListen', () => {
  it('parses HOST:PORT, [IPv6]:PORT and :PORT', () => {
    expect(parseListen('127.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(parseListen('[::1]:9')).toEqual({ host: '::1', port: 9 });
    expect(parseListen(':8080')).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(parseListen('localhost:0')).toEqual({ host: 'localhost', port: 0 });
  });
  it('rejects anything else', () => {
    for (const bad of ['8080', '127.0.0.1', '127.0.0.1:70000', 'a:b', '']) expect(() => parseListen(bad), bad).toThrow(/--listen/);
  });
});

describe('proxyConfigFromArgs', () => {
  const base: ProxyArgs = {
    listen: '127.0.0.1:0',
    path: '/mcp',
    store: 'memory',
    'principal-header': 'Authorization',
    'max-body-bytes': 1024,
    'idle-timeout': 300,
    'session-ttl': 3600,
    'handshake-timeout': 10,
    'store-prefix': 'mcpm:',
    'log-level': 'info',
    _: [],
  };
  it('builds a stdio config from the words after --, with stdio defaults', () => {
    const c = proxyConfigFromArgs({ ...base, '--': ['node', 'server.js', '--flag'] });
    expect(c.upstream).toEqual({ command: 'node', args: ['server.js', '--flag'] });
    expect(c.maxSessions).toBe(100);
    expect(c.principalHeader).toBe('authorization');
    expect(c.idleTimeoutMs).toBe(300_000);
    expect(c.sessionTtlMs).toBe(3_600_000);
    expect(c.requestTimeoutMs).toBe(45_000);
    expect(proxyConfigFromArgs({ ...base, 'request-timeout': 20, '--': ['node'] }).requestTimeoutMs).toBe(20_000);
    expect(c.maxStarting).toBeUndefined(); // the connector's default, DEFAULT_MAX_STARTING
    expect(proxyConfigFromArgs({ ...base, 'max-starting': 2, '--': ['node'] }).maxStarting).toBe(2);
  });
  it('builds an HTTP config with HTTP defaults, secrets and origin lists', () => {
    const c = proxyConfigFromArgs({
      ...base,
      upstream: 'http://127.0.0.1:3001/mcp',
      'session-secret': 'new',
      'previous-session-secret': ['old1,old2'],
      'allowed-origins': ['https://a.example, https://b.example'],
    });
    expect(c.upstream).toEqual({ url: 'http://127.0.0.1:3001/mcp' });
    expect(c.maxSessions).toBe(1000);
    expect(c.sessionSecrets).toEqual(['new', 'old1', 'old2']);
    expect(c.allowedOrigins).toEqual(['https://a.example', 'https://b.example']);
  });
  it('refuses both or neither upstream, bad paths and non-positive numbers', () => {
    expect(() => proxyConfigFromArgs(base)).toThrow(/name the MCP server/);
    expect(() => proxyConfigFromArgs({ ...base, upstream: 'http://x/mcp', '--': ['node'] })).toThrow(/not both/);
    expect(() => proxyConfigFromArgs({ ...base, path: 'mcp', '--': ['node'] })).toThrow(/--path/);
    expect(() => proxyConfigFromArgs({ ...base, 'max-sessions': 0, '--': ['node'] })).toThrow(/--max-sessions/);
    expect(() => proxyConfigFromArgs({ ...base, 'idle-timeout': Number.NaN, '--': ['node'] })).toThrow(/--idle-timeout/);
    expect(() => proxyConfigFromArgs({ ...base, 'request-timeout': 0, '--': ['node'] })).toThrow(/--request-timeout/);
    expect(() => proxyConfigFromArgs({ ...base, 'max-starting': 1.5, '--': ['node'] })).toThrow(/--max-starting must be a positive integer/);
    expect(() => proxyConfigFromArgs({ ...base, 'max-starting': 0, '--': ['node'] })).toThrow(/--max-starting/);
    expect(() => proxyConfigFromArgs({ ...base, 'max-starting': 2, upstream: 'http://x/mcp' })).toThrow(/--max-starting bounds stdio/);
  });
});

// ---- The built CLI (npm test builds first) ----

const children = new Set<ChildProcess>();
afterEach(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
});
afterAll(() => stopAllProcesses());

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Run {
  assertCliBuilt();
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MCP_MIGRATE_')));
  const child = spawn(process.execPath, [CLI_ENTRY, ...args], { cwd: REPO_ROOT, env: { ...clean, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, rej) => (t = setTimeout(() => rej(new Error(`timeout: ${what}`)), ms)))]);
  } finally {
    clearTimeout(t);
  }
}

describe('mcp-migrate proxy (built CLI)', () => {
  it.each([
    [['proxy'], /name the MCP server/],
    [['proxy', '--store', 'redis://127.0.0.1:1', '--', 'node'], /--session-secret/],
    [['proxy', '--upstream', 'http://127.0.0.1:1/mcp', '--', 'node'], /not both/],
    [['proxy', '--listen', 'nope', '--', 'node'], /--listen/],
    [['proxy', '--store', 'postgres://x', '--', 'node'], /--store/],
    [['proxy', '--session-secret', 'short', '--', 'node'], /at least 16 bytes/],
    [['proxy', '--upstream', 'ftp://x/mcp'], /--upstream/],
  ])('exits 2 for %j with a message on stderr and nothing on stdout', async (args, message) => {
    const run = runCli(args as string[]);
    expect(await withTimeout(run.exited, 15_000, 'exit')).toBe(2);
    expect(run.stderr()).toMatch(message as RegExp);
    expect(run.stdout()).toBe('');
  });

  it('exits 2 when the port is taken', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const run = runCli(['proxy', '--listen', `127.0.0.1:${port}`, '--', ...EVERYTHING_STDIO_COMMAND]);
      expect(await withTimeout(run.exited, 15_000, 'exit')).toBe(2);
      expect(run.stderr()).toMatch(/EADDRINUSE/);
    } finally {
      blocker.close();
    }
  });

  it('reads every setting from MCP_MIGRATE_* variables, logs JSON to stderr only, and stops cleanly on SIGTERM', async () => {
    const port = await getFreePort();
    const run = runCli(['proxy', '--', ...EVERYTHING_STDIO_COMMAND], {
      MCP_MIGRATE_LISTEN: `127.0.0.1:${port}`,
      MCP_MIGRATE_PATH: '/custom-mcp',
      MCP_MIGRATE_SESSION_SECRET: 'env-secret-0123456789abcdef',
      MCP_MIGRATE_LOG_LEVEL: 'debug',
      MCP_MIGRATE_MAX_SESSIONS: '7',
    });
    await withTimeout(pollUntil(() => run.stderr().includes('"msg":"listening"'), 15_000), 16_000, 'listening');
    const listening = run
      .stderr()
      .split('\n')
      .filter((l) => l.includes('"msg":"listening"'))
      .map((l) => JSON.parse(l) as { url: string; maxSessions: number })[0]!;
    expect(listening.url).toBe(`http://127.0.0.1:${port}/custom-mcp`);
    expect(listening.maxSessions).toBe(7);

    const { client, transport } = await connectClient(listening.url);
    const r = await client.callTool({ name: 'echo', arguments: { message: 'cli' } });
    expect(r.content).toEqual([{ type: 'text', text: 'Echo: cli' }]);
    const pidLine = run
      .stderr()
      .split('\n')
      .find((l) => l.includes('started MCP server process'));
    const childPid = (JSON.parse(pidLine!) as { pid: number }).pid;
    expect(isAlive(childPid)).toBe(true);
    expect(transport.sessionId).toBeDefined();
    // Every stderr line is one JSON object; the secret never appears.
    for (const line of run.stderr().split('\n').filter(Boolean)) expect(() => JSON.parse(line), line).not.toThrow();
    expect(run.stderr()).not.toContain('env-secret');
    expect(run.stderr()).not.toContain(transport.sessionId!);

    run.child.kill('SIGTERM');
    expect(await withTimeout(run.exited, 15_000, 'exit after SIGTERM')).toBe(0);
    expect(await pollUntil(() => !isAlive(childPid), 5_000)).toBe(true);
    expect(run.stdout()).toBe('');
    await client.close().catch(() => undefined);
  });
});
