/**
 * Whether a value of a type is plain data a shared store gives back unchanged (the runtime's value codec,
 * `packages/runtime/src/value-codec.ts`: JSON values, `undefined`, `Date`, `URL`). Used by
 * `no-global-connection-state` (which findings the `shared-map` transform may rewrite) and by that
 * transform. `any`/`unknown` (untyped JavaScript) pass: the codec then refuses what is not plain data
 * when it is written, with an error rather than a changed value.
 */
import { ts } from 'ts-morph';

/** Built-in classes the codec round-trips. */
const ROUND_TRIPPED = new Set(['Date', 'URL']);
/** Built-in objects with identity or behaviour that JSON would lose (or turn into `{}`). */
const LIVE_BUILTINS = /^(Map|Set|WeakMap|WeakSet|Promise|RegExp|Error|ArrayBuffer|Uint8Array|Buffer|ReadableStream|AbortController|AbortSignal|EventEmitter)$/;
const PRIMITIVE = ts.TypeFlags.StringLike | ts.TypeFlags.NumberLike | ts.TypeFlags.BooleanLike | ts.TypeFlags.Null | ts.TypeFlags.Undefined | ts.TypeFlags.Void | ts.TypeFlags.EnumLike | ts.TypeFlags.Never;
const MAX_DEPTH = 8;

/** What in `type` is not plain data (`a function (in \`.onOpen\`)`, `an instance of \`Session\``), or `undefined` when all of it is. */
export function notPlainData(type: ts.Type, checker: ts.TypeChecker, seen: Set<ts.Type> = new Set(), depth = 0): string | undefined {
  if (type.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown) || seen.has(type) || depth > MAX_DEPTH) return undefined;
  if (type.flags & (ts.TypeFlags.BigIntLike | ts.TypeFlags.ESSymbolLike)) return `a ${checker.typeToString(type)}`;
  if (type.flags & PRIMITIVE) return undefined;
  seen.add(type);
  const inner = (t: ts.Type): string | undefined => notPlainData(t, checker, seen, depth + 1);
  if (type.isUnion() || type.isIntersection()) return firstOf(type.types, inner);
  if (checker.isArrayType(type) || checker.isTupleType(type)) return firstOf(checker.getTypeArguments(type as ts.TypeReference), inner);
  const symbol = type.getSymbol();
  const name = symbol?.getName() ?? '';
  if (ROUND_TRIPPED.has(name)) return undefined;
  if (type.getCallSignatures().length > 0 || type.getConstructSignatures().length > 0) return 'a function';
  if (LIVE_BUILTINS.test(name) || symbol?.declarations?.some((d) => ts.isClassLike(d))) return `an instance of \`${name}\``;
  for (const p of type.getProperties()) {
    if (p.declarations?.some((d) => ts.isMethodDeclaration(d) || ts.isMethodSignature(d))) return `a function (in \`.${p.getName()}\`)`;
    const problem = inner(checker.getTypeOfSymbol(p));
    if (problem) return `${problem} (in \`.${p.getName()}\`)`;
  }
  return undefined;
}

function firstOf<T>(items: readonly T[], check: (item: T) => string | undefined): string | undefined {
  for (const item of items) {
    const r = check(item);
    if (r) return r;
  }
  return undefined;
}
