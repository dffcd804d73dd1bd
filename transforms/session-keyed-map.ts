/**
 * `session-keyed-map`: a module-level `Map` or `Set` of serializable data keyed by session id becomes
 * a store-backed `SessionMap` / `SessionSet` (@mcp-migrate/runtime) shared by every replica:
 *
 * - `const x = new Map()` → `createSessionMap("<file>#x")` (`new Set()` → `createSessionSet(…)`);
 * - every `x.get/set/has/delete/add(…)` gets `await`;
 * - an enclosing function that is not `async` is made `async` only where that is safe: a callback
 *   handed to an MCP or HTTP handler registration (which awaits what it returns), or a function
 *   whose every call is already awaited. Otherwise nothing changes and the declaration gets an
 *   `@mcp-migrate-todo` marker naming the synchronous context.
 *
 * Not rewritten (marker instead): iteration, `size`, `clear`, passing the container around, values
 * mutated in place (`x.get(id).push(…)`), containers that are not a plain module-level variable.
 */
import { Node, SyntaxKind, type CallExpression, type Identifier, type VariableDeclaration } from 'ts-morph';
import { defineTransform, type LocatedFinding, type TransformContext } from './define-transform.js';
import { awaitCall, readValueChanged } from './support/store-access.js';

const MAP_METHODS = new Set(['get', 'set', 'has', 'delete']);
const SET_METHODS = new Set(['has', 'add', 'delete']);
/** Calls that await the callback they are given (MCP SDK registrations, HTTP routes). */
const AWAITING_REGISTRATIONS = /^(tool|registerTool|prompt|registerPrompt|resource|registerResource|setRequestHandler|setNotificationHandler|get|post|put|patch|delete|all|use|route|handle)$/;

type FunctionLike = Node & { isAsync?: () => boolean };

export default defineTransform({
  id: 'session-keyed-map',
  title: 'Session-keyed Map/Set → store-backed session map',
  fixes: ['no-session-keyed-state'],
  run(ctx) {
    for (const f of ctx.findings) {
      const reason = rewrite(ctx, f);
      if (reason) ctx.todo(f, reason);
    }
  },
});

function rewrite(ctx: TransformContext, f: LocatedFinding): string | undefined {
  const sf = f.sourceFile;
  const decl = f.node.getParent();
  if (!decl || !Node.isVariableDeclaration(decl) || !Node.isIdentifier(decl.getNameNode()) || !Node.isSourceFile(decl.getVariableStatement()?.getParent() ?? decl)) {
    return 'session-keyed state that is not a module-level variable: keep it in a store-backed `createSessionMap(name)` / `createSessionSet(name)` from @mcp-migrate/runtime (await every access)';
  }
  const init = decl.getInitializer();
  const ctor = init && Node.isNewExpression(init) ? init.getExpression().getText() : undefined;
  if (!init || !Node.isNewExpression(init) || (ctor !== 'Map' && ctor !== 'Set') || init.getArguments().length > 0) {
    return 'not an empty `new Map()` / `new Set()`: move it by hand to `createSessionMap(name)` / `createSessionSet(name)` from @mcp-migrate/runtime';
  }
  const kind = ctor === 'Map' ? 'map' : 'set';
  const methods = kind === 'map' ? MAP_METHODS : SET_METHODS;
  const name = decl.getName();
  const calls: CallExpression[] = [];
  for (const ref of (decl.getNameNode() as Identifier).findReferencesAsNodes()) {
    if (ref === decl.getNameNode()) continue;
    const access = ref.getParent();
    if (Node.isImportSpecifier(access) || Node.isExportSpecifier(access)) continue;
    const call = access?.getParent();
    if (!access || !Node.isPropertyAccessExpression(access) || access.getExpression() !== ref || !call || !Node.isCallExpression(call) || call.getExpression() !== access) {
      return `\`${name}\` is used other than through ${[...methods].join('/')} calls (line ${ref.getStartLineNumber()}: \`${(access ?? ref).getText().slice(0, 50)}\`): a store-backed map cannot be iterated, sized or passed around; keep the per-session data in \`createSession${kind === 'map' ? 'Map' : 'Set'}(name)\` and the rest elsewhere`;
    }
    const method = access.getName();
    if (!methods.has(method)) return `\`${name}.${method}(…)\` (line ${ref.getStartLineNumber()}) has no store-backed equivalent (iteration, size and clear would need every replica's data)`;
    if (method === 'get' && readValueChanged(call)) {
      return `the value of \`${name}.get(…)\` is changed in place (line ${call.getStartLineNumber()}): with a shared store, write it back with \`set\` after each change, then move \`${name}\` to \`createSessionMap(name)\``;
    }
    calls.push(call);
  }
  // Where can `await` go?
  const makeAsync = new Set<FunctionLike>();
  for (const call of calls) {
    const fn = call.getFirstAncestor((a) => Node.isFunctionLikeDeclaration(a) || Node.isArrowFunction(a) || Node.isFunctionExpression(a)) as FunctionLike | undefined;
    if (!fn) return `\`${name}\` is used at module level (line ${call.getStartLineNumber()}), where nothing can be awaited`;
    if (fn.isAsync?.()) continue;
    if (!safeToMakeAsync(fn)) {
      return `\`${name}\` is used in a synchronous function (line ${fn.getStartLineNumber()}) whose callers do not await it: making it async would change what they see; move the data to \`createSession${kind === 'map' ? 'Map' : 'Set'}(name)\` and await it in an async caller`;
    }
    makeAsync.add(fn);
  }

  // ---- edits
  const typeArgs = init.getTypeArguments().map((t) => t.getText());
  const fnName = kind === 'map' ? 'createSessionMap' : 'createSessionSet';
  const id = `${f.finding.file}#${name}`;
  ctx.replace(sf, init.getStart(), init.getEnd(), `${fnName}${typeArgs.length ? `<${typeArgs.join(', ')}>` : ''}(${JSON.stringify(id)})`);
  const typeNode = decl.getTypeNode();
  if (typeNode && Node.isTypeReference(typeNode)) {
    const args = typeNode.getTypeArguments().map((t) => t.getText());
    ctx.replace(sf, typeNode.getStart(), typeNode.getEnd(), `${kind === 'map' ? 'SessionMap' : 'SessionSet'}${args.length ? `<${args.join(', ')}>` : ''}`);
    ctx.importRuntime(sf, kind === 'map' ? 'SessionMap' : 'SessionSet');
  }
  ctx.importRuntime(sf, fnName);
  for (const call of calls) awaitCall(ctx, sf, call);
  for (const fn of makeAsync) ctx.insert(sf, asyncPosition(fn), 'async ');
  ctx.changed(f, `\`${name}\` is a store-backed ${kind === 'map' ? 'SessionMap' : 'SessionSet'} (${calls.length} access${calls.length === 1 ? '' : 'es'} awaited${makeAsync.size ? `, ${makeAsync.size} function${makeAsync.size === 1 ? '' : 's'} made async` : ''})`);
  return undefined;
}

function safeToMakeAsync(fn: Node): boolean {
  const parent = fn.getParent();
  // A callback handed straight to an MCP/HTTP registration: the SDK and the frameworks await it.
  if (parent && Node.isCallExpression(parent) && parent.getArguments().includes(fn)) {
    const callee = parent.getExpression();
    const name = Node.isPropertyAccessExpression(callee) ? callee.getName() : callee.getText();
    return AWAITING_REGISTRATIONS.test(name);
  }
  // A named function whose every use is an awaited call.
  let nameNode: Node | undefined;
  if (Node.isFunctionDeclaration(fn)) nameNode = fn.getNameNode();
  else if (parent && Node.isVariableDeclaration(parent)) nameNode = (parent as VariableDeclaration).getNameNode();
  if (!nameNode || !Node.isIdentifier(nameNode)) return false;
  const refs = nameNode.findReferencesAsNodes().filter((r) => r !== nameNode);
  return refs.length > 0 && refs.every((r) => {
    const call = r.getParent();
    return !!call && Node.isCallExpression(call) && call.getExpression() === r && Node.isAwaitExpression(call.getParent());
  });
}

function asyncPosition(fn: Node): number {
  return (fn.getFirstChildByKind(SyntaxKind.FunctionKeyword) ?? fn).getStart();
}
