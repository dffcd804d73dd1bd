/**
 * Temporary file trees for unit tests. `const tree = tempTrees('mcpm-project')` registers an `afterEach`
 * that removes every tree made since; `tree(files)` writes `files` (path relative to the tree → content;
 * a path ending with `/` is an empty directory) under a new directory in `os.tmpdir()` and returns its path.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach } from 'vitest';

export function tempTrees(prefix: string): (files: Record<string, string>) => string {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  return (files) => {
    const root = mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
    dirs.push(root);
    for (const [rel, content] of Object.entries(files)) {
      const full = path.join(root, rel);
      if (rel.endsWith('/')) mkdirSync(full, { recursive: true });
      else {
        mkdirSync(path.dirname(full), { recursive: true });
        writeFileSync(full, content);
      }
    }
    return root;
  };
}
