/**
 * Text edits. Transforms never re-print code: each change is a splice of the original text, so
 * formatting and comments outside the edited ranges stay byte for byte.
 */
export interface Edit {
  start: number;
  end: number;
  text: string;
}

/** Applies non-overlapping edits (any order). Insertions at one position keep their given order. @throws on overlap. */
export function applyEdits(text: string, edits: readonly Edit[]): string {
  const sorted = edits.map((e, i) => ({ ...e, i })).sort((a, b) => a.start - b.start || a.end - b.end || a.i - b.i);
  let out = '';
  let at = 0;
  for (const e of sorted) {
    if (e.start < at) throw new Error(`overlapping edits at ${e.start}`);
    out += text.slice(at, e.start) + e.text;
    at = e.end;
  }
  return out + text.slice(at);
}

/** Maps a position of the text before `edits` to the text after them (`undefined` if it was inside a replaced range). */
export function mapPosition(pos: number, edits: readonly Edit[]): number | undefined {
  let delta = 0;
  for (const e of edits) {
    if (e.end <= pos && !(e.start === e.end && e.start === pos)) delta += e.text.length - (e.end - e.start);
    else if (e.start < pos && pos < e.end) return undefined;
  }
  return pos + delta;
}

/** Whether two edits overlap (touching insertions do not). */
export function overlaps(a: Edit, b: Edit): boolean {
  return a.start < b.end && b.start < a.end;
}

/** The white space that starts the line holding `pos` in `text`. */
export function indentOf(text: string, pos: number): string {
  const lineStart = text.lastIndexOf('\n', pos - 1) + 1;
  return /^[ \t]*/.exec(text.slice(lineStart, pos))![0];
}
