import type { SourceFile } from 'ts-morph';

/**
 * `base`, or `base2`, `base3`, …: the first name that occurs nowhere in the file, for a declaration a
 * codemod adds (`openSession`, `opened`, `sessionResponse`). Reads the text, not the syntax tree:
 * wrapping every identifier of a bundle in ts-morph nodes costs seconds. A name that appears only in a
 * string or a comment counts as taken too, which keeps the result unique.
 */
export function uniqueName(sf: SourceFile, base: string): string {
  const text = sf.getFullText();
  const taken = (name: string): boolean => new RegExp(`(?<![\\w$])${name}(?![\\w$])`).test(text);
  let name = base;
  for (let i = 2; taken(name); i += 1) name = `${base}${i}`;
  return name;
}
