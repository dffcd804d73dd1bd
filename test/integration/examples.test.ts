/**
 * The shipped examples stay valid: the nginx config parses and is plain round-robin, and the
 * Kubernetes manifests run 3 proxy replicas behind a Service without affinity, with flags the
 * built CLI really has.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI_ENTRY, REPO_ROOT, assertCliBuilt } from '../helpers/index.js';

const NGINX_DIR = path.join(REPO_ROOT, 'examples', 'nginx');
const K8S_DIR = path.join(REPO_ROOT, 'examples', 'kubernetes');
const read = (file: string): string => fs.readFileSync(file, 'utf8');

/** Directives only (comments stripped), so prose that mentions ip_hash does not count. */
const directives = (conf: string): string => conf.replace(/#.*$/gm, '');

describe('examples/nginx', () => {
  const conf = read(path.join(NGINX_DIR, 'nginx.conf'));

  it('is accepted by `nginx -t`', () => {
    const prefix = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-migrate-example-nginx-'));
    try {
      fs.mkdirSync(path.join(prefix, 'logs'));
      fs.mkdirSync(path.join(prefix, 'tmp'));
      const globals = process.getuid?.() === 0 ? 'user root;' : '';
      const out = execFileSync('nginx', ['-t', '-p', prefix, '-c', path.join(NGINX_DIR, 'nginx.conf'), '-e', path.join(prefix, 'logs', 'error.log'), ...(globals ? ['-g', globals] : [])], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin` },
      });
      expect(out).toBe(''); // nginx -t reports on stderr; a failure throws
    } finally {
      fs.rmSync(prefix, { recursive: true, force: true });
    }
  });

  it('balances plain round-robin over 3 local replicas, SSE-friendly', () => {
    const d = directives(conf);
    expect(d).not.toMatch(/\b(ip_hash|hash|sticky|least_conn|random)\b/);
    expect(d.match(/^\s*server 127\.0\.0\.1:310[1-3]\b/gm)).toHaveLength(3);
    expect(d).toMatch(/proxy_buffering off;/);
    expect(d).toMatch(/proxy_http_version 1\.1;/);
    expect(d).toMatch(/proxy_read_timeout 1h;/);
  });

  it('run-local.sh starts the same three replica ports the config balances over', () => {
    const script = read(path.join(NGINX_DIR, 'run-local.sh'));
    expect(script).toMatch(/for port in 3101 3102 3103/);
    expect(() => execFileSync('bash', ['-n', path.join(NGINX_DIR, 'run-local.sh')])).not.toThrow();
  });
});

describe('examples/kubernetes', () => {
  const deployment = read(path.join(K8S_DIR, 'deployment.yaml'));
  const service = read(path.join(K8S_DIR, 'service.yaml'));

  it('runs 3 replicas behind a Service without session affinity', () => {
    expect(deployment).toMatch(/^\s*replicas: 3$/m);
    expect(directives(service)).toMatch(/^\s*sessionAffinity: None$/m);
    expect(directives(service)).not.toMatch(/ClientIP/);
    const selector = /selector: \{ app: ([\w-]+) \}/.exec(service)?.[1];
    expect(selector).toBe('mcp-everything');
    expect(deployment).toContain(`labels: { app: ${selector} }`);
  });

  it('lists every manifest in kustomization.yaml', () => {
    const kustomization = read(path.join(K8S_DIR, 'kustomization.yaml'));
    for (const f of fs.readdirSync(K8S_DIR).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')) {
      expect(kustomization).toContain(`- ${f}`);
    }
  });

  it('passes only flags that `mcp-migrate proxy --help` documents', () => {
    assertCliBuilt();
    const help = execFileSync(process.execPath, [CLI_ENTRY, 'proxy', '--help'], { encoding: 'utf8' });
    const args = [...deployment.matchAll(/^\s*- (--[a-z-]+)$/gm)].map((m) => m[1]!);
    expect(args).toEqual(expect.arrayContaining(['--listen', '--path', '--store', '--session-secret']));
    for (const flag of args) expect(help, `proxy --help lacks ${flag}`).toContain(flag);
    // The same flags in the local nginx example script.
    const script = read(path.join(NGINX_DIR, 'run-local.sh'));
    const scriptFlags = [...script.matchAll(/ proxy ([\s\S]*?) -- /g)].flatMap((m) => [...m[1]!.matchAll(/(--[a-z-]+)/g)].map((x) => x[1]!));
    expect(scriptFlags).toEqual(expect.arrayContaining(['--listen', '--store', '--session-secret']));
    for (const flag of scriptFlags) {
      expect(help, `proxy --help lacks ${flag}`).toContain(flag);
    }
  });
});
