/**
 * The runtime registries a migrated file constructs (`new SessionTransportRegistry(options?)`,
 * `new SessionEntryRegistry(transportOf, options?)`, imported from `@mcp-migrate/runtime`), their kind
 * and affinity, and the edit that gives a Node one owner affinity (`{ affinity: 'owner' }`:
 * packages/runtime `SessionTransportRegistryOptions.affinity`; the replica that opened a session
 * serves it, the others forward its HTTP requests there; docs/apply.md "Owner affinity").
 *
 * Recognized by the import they come from, not by the variable they are kept in.
 */
import { Node, SyntaxKind, ts, type NewExpression, type ObjectLiteralExpression, type SourceFile } from 'ts-morph';
import { RUNTIME_MODULE } from '../../src/apply/todo.js';

/** Runtime registry classes and the index of their options argument. */
const OPTIONS_INDEX: Record<string, number> = { SessionTransportRegistry: 0, SessionEntryRegistry: 1 };

export interface RuntimeRegistry {
  node: NewExpression;
  /** Index of the options argument (after `transportOf` for an entry registry). */
  optionsIndex: number;
  /** `web` when its options say `kind: 'web'` (owner affinity needs a Node server). */
  kind: 'node' | 'web';
  /** Its options say `affinity: 'owner'`. */
  owner: boolean;
  /** The options argument is something other than an object literal (a variable): neither read nor edited. */
  opaque: boolean;
}

/** Every runtime registry `new` of the file (by the local names its runtime import binds). */
export function runtimeRegistries(sf: SourceFile): RuntimeRegistry[] {
  const local = new Map<string, number>();
  for (const d of sf.getImportDeclarations()) {
    if (d.getModuleSpecifierValue() !== RUNTIME_MODULE) continue;
    for (const n of d.getNamedImports()) {
      const index = OPTIONS_INDEX[n.getName()];
      if (index !== undefined) local.set(n.getAliasNode()?.getText() ?? n.getName(), index);
    }
  }
  if (local.size === 0) return [];
  // Walks the compiler's tree and wraps only the `new`s found: wrapping every node of a bundle costs seconds.
  const found: Array<[ts.NewExpression, number]> = [];
  const visit = (c: ts.Node): void => {
    if (ts.isNewExpression(c) && ts.isIdentifier(c.expression) && local.has(c.expression.text)) found.push([c, local.get(c.expression.text)!]);
    ts.forEachChild(c, visit);
  };
  visit(sf.compilerNode);
  const out: RuntimeRegistry[] = [];
  for (const [c, index] of found) {
    const n = sf.getDescendantAtStartWithWidth(c.getStart(sf.compilerNode), c.getWidth(sf.compilerNode));
    if (!n || !Node.isNewExpression(n)) continue;
    const options = n.getArguments()[index];
    if (options && !Node.isObjectLiteralExpression(options)) {
      out.push({ node: n, optionsIndex: index, kind: 'node', owner: false, opaque: true });
      continue;
    }
    out.push({ node: n, optionsIndex: index, kind: stringProperty(options, 'kind') === 'web' ? 'web' : 'node', owner: stringProperty(options, 'affinity') === 'owner', opaque: false });
  }
  return out;
}

/** The edit `[start, end, text]` that gives a Node registry `affinity: 'owner'`, or undefined (already has it, web, opaque). */
export function ownerAffinityEdit(reg: RuntimeRegistry, quote: string): [number, number, string] | undefined {
  if (reg.owner || reg.kind !== 'node' || reg.opaque) return undefined;
  const n = reg.node;
  const index = reg.optionsIndex;
  const property = `affinity: ${quote}owner${quote}`;
  const options = n.getArguments()[index];
  if (options && Node.isObjectLiteralExpression(options)) {
    const props = options.getProperties();
    if (props.length === 0) return [options.getStart(), options.getEnd(), `{ ${property} }`];
    const last = props.at(-1)!;
    return [last.getEnd(), last.getEnd(), `, ${property}`];
  }
  const args = n.getArguments();
  if (args.length < index) return undefined; // SessionEntryRegistry without its transportOf: not ours to complete
  if (args.length === 0) {
    const open = n.getFirstChildByKind(SyntaxKind.OpenParenToken);
    return open ? [open.getEnd(), open.getEnd(), `{ ${property} }`] : [n.getEnd(), n.getEnd(), `({ ${property} })`];
  }
  const last = args.at(-1)!;
  return [last.getEnd(), last.getEnd(), `, { ${property} }`];
}

/** The quote character of the file's runtime import (the file's own style). */
export function runtimeQuote(sf: SourceFile): string {
  const d = sf.getImportDeclarations().find((x) => x.getModuleSpecifierValue() === RUNTIME_MODULE);
  return d?.getModuleSpecifier().getText().startsWith('"') ? '"' : "'";
}

function stringProperty(options: ObjectLiteralExpression | undefined, name: string): string | undefined {
  const p = options?.getProperty(name);
  const init = p && Node.isPropertyAssignment(p) ? p.getInitializer() : undefined;
  return init && (Node.isStringLiteral(init) || Node.isNoSubstitutionTemplateLiteral(init)) ? init.getLiteralText() : undefined;
}
