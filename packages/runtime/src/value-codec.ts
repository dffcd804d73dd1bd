/**
 * The text form of the values the store-backed containers keep ({@link SessionMap}, {@link SharedMap}):
 * JSON, plus a small tag for the few built-in values JSON would silently change. A value read back is
 * equal to the value written (a fresh copy: the store holds data, not references), or writing it fails.
 *
 * Round-trips: `null`, booleans, strings, finite numbers, arrays, plain objects (prototype `Object` or
 * `null`), and, tagged, `undefined` (top level, array items and object properties alike), `Date` and `URL`.
 * A tagged value is `{"$mcpm":"<tag>","v":…}`; a plain object that has an own `$mcpm` key is itself
 * wrapped (`{"$mcpm":"object","v":{…}}`), so no data is mistaken for a tag.
 *
 * Refused with {@link UnstorableValueError} (never stored as something else): functions, symbols,
 * bigints, non-finite numbers, class instances (`Map`, `Set`, a `Promise`, a socket, a user class:
 * their methods and identity would not survive), and cycles.
 */

const TAG = '$mcpm';

/** A value the store cannot keep and give back unchanged. `path` is where in the value (`$.params.cb`). */
export class UnstorableValueError extends TypeError {
  constructor(
    readonly path: string,
    what: string,
  ) {
    super(`cannot keep ${what} at ${path} in a shared store: only plain data (JSON values, undefined, Date, URL) is read back unchanged on another replica`);
    this.name = 'UnstorableValueError';
  }
}

/** `value` as text. @throws UnstorableValueError for what does not round-trip (see the module doc). */
export function encodeValue(value: unknown): string {
  return JSON.stringify(toWire(value, '$', new Set()));
}

/** The value `encodeValue` wrote (a fresh copy). @throws SyntaxError for text that is not JSON. */
export function decodeValue(text: string): unknown {
  return fromWire(JSON.parse(text) as unknown);
}

function toWire(value: unknown, path: string, seen: Set<object>): unknown {
  switch (typeof value) {
    case 'undefined':
      return { [TAG]: 'undefined' };
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw new UnstorableValueError(path, `the number ${value}`);
      return value;
    case 'function':
    case 'symbol':
    case 'bigint':
      throw new UnstorableValueError(path, `a ${typeof value}`);
  }
  if (value === null) return null;
  const obj = value as object;
  if (obj instanceof Date) return { [TAG]: 'Date', v: obj.getTime() };
  if (obj instanceof URL) return { [TAG]: 'URL', v: obj.href };
  if (seen.has(obj)) throw new UnstorableValueError(path, 'a cycle');
  seen.add(obj);
  try {
    if (Array.isArray(obj)) return obj.map((item: unknown, i) => toWire(item, `${path}[${i}]`, seen));
    const proto = Object.getPrototypeOf(obj) as object | null;
    if (proto !== Object.prototype && proto !== null) {
      throw new UnstorableValueError(path, `an instance of ${(obj.constructor as { name?: string } | undefined)?.name || 'a class'}`);
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(obj)) out[k] = toWire(v, `${path}.${k}`, seen);
    return Object.hasOwn(obj, TAG) ? { [TAG]: 'object', v: out } : out;
  } finally {
    seen.delete(obj);
  }
}

function fromWire(wire: unknown): unknown {
  if (wire === null || typeof wire !== 'object') return wire;
  if (Array.isArray(wire)) return wire.map(fromWire);
  const obj = wire as Record<string, unknown>;
  const tag = obj[TAG];
  if (tag === 'undefined') return undefined;
  if (tag === 'Date') return new Date(obj.v as number);
  if (tag === 'URL') return new URL(obj.v as string);
  const fields = tag === 'object' ? (obj.v as Record<string, unknown>) : obj;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = fromWire(v);
  return out;
}
