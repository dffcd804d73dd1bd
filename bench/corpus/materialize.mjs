/**
 * Materializer for this repository's corpus labels (`bench/corpus/labels/*.json`): writes each pinned
 * (repository, commit) tree from a git mirror and checks every labelled line against its hash.
 *
 * Same layout and rules as `../shared/corpus/materialize.sh`, so `../shared/corpus/score.py` reads both sets:
 * - mirrors: `<mirrorDir>/<owner>+<name>/repo` (a bare clone holding the pinned commit);
 * - trees: `<dest>/<owner>+<name>@<first 10 hex of commit>/`, source files only (`.ts/.js` family) and the
 *   configuration that decides module resolution (`package.json`, `tsconfig*.json`, Deno's `deno.json(c)` and
 *   `import_map.json`); a tree written before a configuration file was copied gets it added; blobs a mirror
 *   lacks (its largest files) are skipped;
 * - line hash: first 12 hex of SHA-1 of the line with white space folded (`" ".join(line.split())`).
 *
 * No third-party source is stored in this repository: the trees exist only under `dest`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const SOURCE_FILE = /(\.(m|c)?[jt]sx?|package\.json|tsconfig[^/]*\.json|deno\.jsonc?|import_map\.json)$/;
/** Configuration files that decide module resolution (a subset of SOURCE_FILE): added to trees written before they were copied. */
const CONFIG_FILE = /(^|\/)(package\.json|tsconfig[^/]*\.json|deno\.jsonc?|import_map\.json)$/;

/** Reads every `*.json` in `labelsDir` (each a JSON list of corpus entries) and concatenates them, sorted by file name. */
export function loadLabels(labelsDir) {
  const files = readdirSync(labelsDir).filter((f) => f.endsWith('.json')).sort();
  if (files.length === 0) throw new Error(`no label files (*.json) in ${labelsDir}`);
  return files.flatMap((f) => {
    const entries = JSON.parse(readFileSync(join(labelsDir, f), 'utf8'));
    if (!Array.isArray(entries)) throw new Error(`${f}: expected a JSON list of corpus entries`);
    return entries;
  });
}

/** The characters Python's `str.split()` treats as white space (JavaScript's `\s` differs: it has U+FEFF, lacks U+001C-U+001F and U+0085). */
const PY_SPACE = /[\t\n\v\f\r \u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u;

/** `" ".join(line.split())` as in materialize.sh, then the first 12 hex digits of its SHA-1. */
export function lineHash(line) {
  const folded = line.split(PY_SPACE).filter(Boolean).join(' ');
  return createHash('sha1').update(folded, 'utf8').digest('hex').slice(0, 12);
}

export const treeName = (repo, commit) => `${repo.replace('/', '+')}@${commit.slice(0, 10)}`;

/** Lists `[blobSha, path]` of the source files of `commit` in the bare repository `git`. */
function sourceBlobs(git, commit) {
  const r = spawnSync('git', ['-C', git, 'ls-tree', '-r', '-z', commit], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`git ls-tree ${commit} in ${git} failed: ${r.stderr.trim()}`);
  return r.stdout
    .split('\0')
    .filter(Boolean)
    .map((rec) => {
      const [meta, path] = rec.split('\t');
      const [, type, sha] = meta.split(' ');
      return { type, sha, path };
    })
    .filter((b) => b.type === 'blob' && SOURCE_FILE.test(b.path))
    .map((b) => [b.sha, b.path]);
}

/**
 * Reads blobs through one `git cat-file --batch` process. Resolves with a Map sha -> Buffer; a sha the
 * mirror lacks ("<sha> missing") is absent from the map.
 */
function readBlobs(git, shas) {
  return new Promise((resolve, reject) => {
    const child = spawn('git', ['-C', git, 'cat-file', '--batch'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const chunks = [];
    let stderr = '';
    child.stdout.on('data', (c) => chunks.push(c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`git cat-file --batch in ${git} exited ${code}: ${stderr.trim()}`));
      resolve(parseBatch(Buffer.concat(chunks)));
    });
    child.stdin.end(shas.join('\n') + '\n');
  });
}

/** Parses `git cat-file --batch` output: "<sha> <type> <size>\n<content>\n" or "<sha> missing\n". */
function parseBatch(buf) {
  const blobs = new Map();
  let at = 0;
  while (at < buf.length) {
    const nl = buf.indexOf(10, at);
    const [sha, type, size] = buf.subarray(at, nl).toString('utf8').split(' ');
    at = nl + 1;
    if (type === 'missing' || size === undefined) continue;
    blobs.set(sha, buf.subarray(at, at + Number(size)));
    at += Number(size) + 1;
  }
  return blobs;
}

/** Writes the source tree of `commit` to `out` (via a sibling temporary directory, renamed when complete). */
async function writeTree(git, commit, out) {
  const wanted = sourceBlobs(git, commit);
  const blobs = await readBlobs(git, [...new Set(wanted.map(([sha]) => sha))]);
  const partial = `${out}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  for (const [sha, path] of wanted) {
    const data = blobs.get(sha);
    if (!data) continue; // mirrors may lack their largest blobs
    mkdirSync(dirname(join(partial, path)), { recursive: true });
    writeFileSync(join(partial, path), data);
  }
  renameSync(partial, out);
}

/** Adds to an existing tree the configuration files of `commit` it lacks (trees written by an older materializer). */
async function addMissingConfig(git, commit, out) {
  const missing = sourceBlobs(git, commit).filter(([, path]) => CONFIG_FILE.test(path) && !existsSync(join(out, path)));
  if (missing.length === 0) return;
  const blobs = await readBlobs(git, [...new Set(missing.map(([sha]) => sha))]);
  for (const [sha, path] of missing) {
    const data = blobs.get(sha);
    if (!data) continue;
    mkdirSync(dirname(join(out, path)), { recursive: true });
    writeFileSync(join(out, path), data);
  }
}

/** Returns the labelled lines of `entry` whose text no longer matches `line_sha1` (or are out of range). */
export function badLines(entry, text) {
  // materialize.sh reads files in Python text mode: universal newlines turn \r\n and \r into \n.
  const lines = text.replace(/\r\n?/g, '\n').split('\n');
  return [...entry.findings, ...entry.negatives].filter((f) => {
    const n = f.line;
    return !(n > 0 && n <= lines.length && lineHash(lines[n - 1]) === f.line_sha1);
  });
}

/**
 * Materializes every (repo, commit) of `entries` under `dest` from mirrors in `mirrorDir` and checks each
 * labelled line. Existing trees are reused. Resolves with `{trees, missingRepos, mismatches}`:
 * `mismatches` lists `"repo:path:line"` for each line whose hash does not match.
 */
export async function materialize(entries, mirrorDir, dest) {
  mkdirSync(dest, { recursive: true });
  const trees = new Set();
  const missingRepos = new Set();
  const mismatches = [];
  for (const e of entries) {
    const git = join(mirrorDir, e.repo.replace('/', '+'), 'repo');
    if (!existsSync(git)) {
      missingRepos.add(e.repo);
      continue;
    }
    const out = join(dest, treeName(e.repo, e.commit));
    if (!trees.has(out)) {
      if (existsSync(out)) await addMissingConfig(git, e.commit, out);
      else await writeTree(git, e.commit, out);
    }
    trees.add(out);
    const file = join(out, e.path);
    if (!existsSync(file)) {
      mismatches.push(`${e.repo}:${e.path} (file not in the tree)`);
      continue;
    }
    for (const f of badLines(e, readFileSync(file, 'utf8'))) mismatches.push(`${e.repo}:${e.path}:${f.line}`);
  }
  return { trees: trees.size, missingRepos: [...missingRepos].sort(), mismatches };
}
