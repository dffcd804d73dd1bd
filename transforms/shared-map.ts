/**
 * `shared-map`: a process-level `Map` that requests write — a module-level variable, a field of an
 * object made once per process, or the clients, codes and tokens of an in-memory OAuth provider handed
 * to the SDK's auth router — becomes a store-backed `SharedMap` (@mcp-migrate/runtime) that every
 * replica reads:
 *
 * - `new Map()` → `createSharedMap("<file>#<Class>.<field>")` (or `"<file>#<variable>"`: the same name on
 *   every replica); a declared `Map<K, V>` type → `SharedMap<K, V>`;
 * - every `x.get/set/has/delete(…)` gets `await`.
 *
 * Rewritten only when it changes nothing else the code sees, all containers of a finding or none:
 * every use is a keyed `get/set/has/delete` inside an `async` function (so adding `await` changes no
 * caller), keys are strings, values are plain data by type (`value-codec.ts`: JSON, `undefined`, `Date`,
 * `URL`; an untyped JavaScript value is checked when written, and one that is not plain data throws), no
 * value read from it or written to it is changed in place afterwards (the store keeps a copy: the change
 * would be lost), and the object holding it is made once per process (two instances would share the
 * entries). Otherwise the finding gets an `@mcp-migrate-todo` marker saying which of these fails, where.
 */
import path from 'node:path';
import { Node, TypeFlags, type CallExpression, type NewExpression } from 'ts-morph';
import { notPlainData } from '../src/analyzer/plain-data.js';
import { defineTransform, type LocatedFinding, type TransformContext } from './define-transform.js';
import { containersAt, isEmptyNewMap, madeMoreThanOnce, type Container } from './support/process-containers.js';
import { awaitCall, behaviourCalledOnRead, readValueChanged, where, writtenValueChangedAfter } from './support/store-access.js';

const METHODS = new Set(['get', 'set', 'has', 'delete']);

export default defineTransform({
  id: 'shared-map',
  title: 'Process-level Map written by requests → store-backed shared map',
  fixes: ['no-global-connection-state'],
  run(ctx) {
    for (const f of ctx.findings) {
      const reason = rewrite(ctx, f);
      if (reason) ctx.todo(f, reason);
    }
  },
});

function rewrite(ctx: TransformContext, f: LocatedFinding): string | undefined {
  const containers = containersAt(f.node);
  if (!containers) return 'not a module-level variable, a class field or an auth router\'s provider: move the keyed data by hand to `createSharedMap(name)` from @mcp-migrate/runtime (await every access)';
  if (containers.length === 0) return 'no keyed collection found in the fields of the object: move the state it keeps to a store every replica reads';
  const plans: Array<{ c: Container; calls: CallExpression[] }> = [];
  for (const c of containers) {
    const checked = check(c);
    if (typeof checked === 'string') return `\`${c.label}\`: ${checked}`;
    plans.push({ c, calls: checked });
  }
  const classes = new Set(containers.flatMap((c) => (c.cls ? [c.cls] : [])));
  for (const cls of classes) {
    const why = madeMoreThanOnce(cls);
    if (why) return `${why}; keep one store-backed map per instance by hand (\`createSharedMap(name)\` with a name every replica derives alike)`;
  }
  for (const { c, calls } of plans) edit(ctx, c, calls);
  ctx.changed(f, `${plans.map(({ c }) => `\`${c.label}\``).join(', ')} ${plans.length === 1 ? 'is a' : 'are'} store-backed SharedMap${plans.length === 1 ? '' : 's'} (${plans.reduce((n, p) => n + p.calls.length, 0)} accesses awaited)`);
  return undefined;
}

/** The container's calls to await, or why it cannot move to the store. */
function check(c: Container): CallExpression[] | string {
  if (!isEmptyNewMap(c.init)) return `${Node.isNewExpression(c.init) && c.init.getExpression().getText() === 'Map' ? 'a `Map` created with entries' : `\`${c.init.getText().slice(0, 30)}\` is not a keyed \`Map\``}: move it by hand to \`createSharedMap(name)\` from @mcp-migrate/runtime`;
  const keyArg = c.init.getTypeArguments()[0] ?? (c.typeNode && Node.isTypeReference(c.typeNode) ? c.typeNode.getTypeArguments()[0] : undefined);
  if (keyArg && !keyArg.getType().isString() && !keyArg.getType().isAny()) return `its keys are \`${keyArg.getText()}\`, and a store key is a string (a Map tells 1 from "1", a store cannot)`;
  const calls: CallExpression[] = [];
  for (const ref of c.name.findReferencesAsNodes()) {
    if (ref === c.name) continue;
    const access = c.cls ? ref.getParent() : ref;
    if (!access || (c.cls && !(Node.isPropertyAccessExpression(access) && access.getNameNode() === ref))) return `used as \`${(access ?? ref).getText().slice(0, 50)}\` (${where(ref)})`;
    const assigned = access.getParent();
    if (assigned && Node.isBinaryExpression(assigned) && assigned.getLeft() === access) {
      if (assigned.getRight() === c.init) continue;
      return `assigned again (${where(assigned)})`;
    }
    const reason = useProblem(access);
    if (reason) return reason;
    calls.push(access.getParentOrThrow().getParentOrThrow() as CallExpression);
  }
  return calls;
}

/** Why the use of the container at `access` cannot be awaited on a store, or `undefined`. */
function useProblem(access: Node): string | undefined {
  const member = access.getParent();
  const call = member?.getParent();
  if (!member || !Node.isPropertyAccessExpression(member) || member.getExpression() !== access || !call || !Node.isCallExpression(call) || call.getExpression() !== member) {
    return `used other than through get/set/has/delete calls (${where(member ?? access)}): a store-backed map cannot be iterated, sized or passed around`;
  }
  const method = member.getName();
  if (!METHODS.has(method)) return `\`.${method}(…)\` (${where(call)}) has no store-backed equivalent (iteration, size and clear would need every replica's entries)`;
  const fn = call.getFirstAncestor((a) => Node.isFunctionLikeDeclaration(a) || Node.isArrowFunction(a) || Node.isFunctionExpression(a));
  if (!fn || !('isAsync' in fn) || !(fn as { isAsync(): boolean }).isAsync()) {
    return `used ${fn ? 'in a function that is not `async`' : 'at module level'} (${where(call)}): awaiting the store there would change what its callers get`;
  }
  const key = call.getArguments()[0];
  const keyType = key?.getType();
  if (keyType && !keyType.isAny() && !keyType.isUnknown() && !(keyType.getFlags() & TypeFlags.StringLike)) return `keyed by a \`${keyType.getText(call)}\` (${where(call)}): a store key is a string`;
  if (method === 'set' && Node.isPropertyAccessExpression(call.getParent())) return `\`set\` is chained (${where(call)}): write each entry in its own statement`;
  if (method === 'get' && readValueChanged(call)) return `a value read from it is changed in place (${where(call)}): the store hands out copies, so the change would be lost; \`set\` it back after each change, then move the map to \`createSharedMap(name)\``;
  const behaviour = method === 'get' ? behaviourCalledOnRead(call) : undefined;
  if (behaviour) return `a value read from it is called or has a method plain data lacks called (\`${behaviour}\`, ${where(call)}): it holds objects with behaviour, which a shared store cannot keep (plain data only)`;
  if (method === 'set') {
    const value = call.getArguments()[1];
    const problem = value && notPlainData(value.getType().compilerType, value.getProject().getTypeChecker().compilerObject);
    if (problem) return `it stores ${problem} (${where(call)}), which a shared store cannot give back (plain data only: JSON values, undefined, Date, URL)`;
    if (writtenValueChangedAfter(call, 1)) return `a value is changed in place after it is stored (${where(call)}): the store keeps a copy, so the change would be lost`;
  }
  return undefined;
}

function edit(ctx: TransformContext, c: Container, calls: CallExpression[]): void {
  const sf = c.sourceFile;
  const init = c.init as NewExpression;
  const typeArgs = init.getTypeArguments().map((t) => t.getText());
  const file = path.relative(ctx.root, sf.getFilePath()).split(path.sep).join('/');
  const name = `${file}#${c.cls ? `${c.cls.getName() ?? 'class'}.${c.name.getText()}` : c.name.getText()}`;
  ctx.replace(sf, init.getStart(), init.getEnd(), `createSharedMap${typeArgs.length ? `<${typeArgs.join(', ')}>` : ''}(${JSON.stringify(name)})`);
  ctx.importRuntime(sf, 'createSharedMap');
  if (c.typeNode && Node.isTypeReference(c.typeNode) && c.typeNode.getTypeName().getText() === 'Map') {
    const args = c.typeNode.getTypeArguments().map((t) => t.getText());
    ctx.replace(sf, c.typeNode.getStart(), c.typeNode.getEnd(), `SharedMap${args.length ? `<${args.join(', ')}>` : ''}`);
    ctx.importRuntime(sf, 'SharedMap');
  }
  for (const call of calls) awaitCall(ctx, call.getSourceFile(), call);
}
