/**
 * Process measurements shared by the analyze benchmarks (run.mjs, bundle.mjs): wall time (monotonic
 * clock from spawn to exit, ms), CPU time (user + system, ms, from GNU `time -v`; null without it) and
 * peak RSS (bytes: GNU `time -v` "Maximum resident set size", else the highest `VmHWM` read from
 * `/proc/<pid>/status` every 10 ms, else null).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const GNU_TIME = '/usr/bin/time';

/** True when GNU time is installed and reports peak RSS with `-v -o FILE` (BSD/busybox `time` do not). */
async function hasGnuTime() {
  if (!existsSync(GNU_TIME)) return false;
  const out = join(tmpdir(), `mcp-migrate-bench-time-${process.pid}.txt`);
  const code = await new Promise((done) => {
    const child = spawn(GNU_TIME, ['-v', '-o', out, process.execPath, '-e', ''], { stdio: 'ignore' });
    child.on('error', () => done(-1));
    child.on('exit', (c) => done(c));
  });
  const ok = code === 0 && existsSync(out) && /Maximum resident set size/.test(readFileSync(out, 'utf8'));
  rmSync(out, { force: true });
  return ok;
}

/**
 * A `measure(command, args, cwd?)` that resolves with `{ code, wallMs, cpuMs, rss, stdout, stderr }`;
 * commands run in `defaultCwd` unless told otherwise.
 */
export async function measurer(defaultCwd) {
  const useGnuTime = await hasGnuTime();
  const measure = (command, args, cwd = defaultCwd) => {
    const timeFile = join(tmpdir(), `mcp-migrate-bench-${process.pid}-${Date.now()}.txt`);
    const [cmd, argv] = useGnuTime ? [GNU_TIME, ['-v', '-o', timeFile, command, ...args]] : [command, args];
    return new Promise((done, fail) => {
      const started = process.hrtime.bigint();
      const child = spawn(cmd, argv, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
      const stdout = [];
      const stderr = [];
      child.stdout.on('data', (c) => stdout.push(c));
      child.stderr.on('data', (c) => stderr.push(c));
      let hwm = null;
      const poll = useGnuTime
        ? undefined
        : setInterval(() => {
            try {
              const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
              if (m) hwm = Math.max(hwm ?? 0, Number(m[1]) * 1024);
            } catch {
              /* process gone or no procfs */
            }
          }, 10);
      child.on('error', fail);
      child.on('close', (code) => {
        const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
        if (poll) clearInterval(poll);
        let rss = hwm;
        let cpuMs = null;
        if (useGnuTime) {
          const text = existsSync(timeFile) ? readFileSync(timeFile, 'utf8') : '';
          rmSync(timeFile, { force: true });
          const m = /Maximum resident set size \(kbytes\):\s*(\d+)/.exec(text);
          rss = m ? Number(m[1]) * 1024 : null;
          const user = /User time \(seconds\):\s*([\d.]+)/.exec(text);
          const system = /System time \(seconds\):\s*([\d.]+)/.exec(text);
          cpuMs = user && system ? (Number(user[1]) + Number(system[1])) * 1000 : null;
          // GNU time reports "Command exited with non-zero status N" and exits with N itself.
        }
        done({ code, wallMs, cpuMs, rss, stdout: Buffer.concat(stdout).toString('utf8'), stderr: Buffer.concat(stderr).toString('utf8') });
      });
    });
  };
  return { useGnuTime, measure };
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
};
export const sec = (ms) => (ms / 1000).toFixed(2);
export const mb = (bytes) => (bytes === null ? 'n/a' : (bytes / 2 ** 20).toFixed(0));
export const ratio = (a, b) => (a === null || b === null ? 'n/a' : `${(a / b).toFixed(2)}×`);
