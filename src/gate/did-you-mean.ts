/** "Did you mean" suggestions for misspelt names (rule ids, severities, option keys). */

/** Levenshtein edit distance (insertions, deletions, substitutions), O(|a|·|b|). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * The closest candidate to `input`, when it is close enough to be a likely typo: at most a third of
 * the input's length in edits (at least 2), or a candidate that contains the input (or the reverse).
 */
export function didYouMean(input: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(input.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  if (best === undefined) return undefined;
  const limit = Math.max(2, Math.floor(input.length / 3));
  if (bestDistance <= limit) return best;
  const lower = input.toLowerCase();
  return candidates.find((c) => c.toLowerCase().includes(lower) || (lower.includes(c.toLowerCase()) && c.length >= 4));
}

/** `; did you mean "x"?` or the empty string. */
export function suggestion(input: string, candidates: readonly string[]): string {
  const best = didYouMean(input, candidates);
  return best === undefined ? '' : `; did you mean "${best}"?`;
}
