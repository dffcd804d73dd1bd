/**
 * `web-transport-registry`: a `Map` of the SDK's `WebStandardStreamableHTTPServerTransport` (or of
 * @hono/mcp's `StreamableHTTPTransport`, which takes the hono `Context`) keyed by session id, in a hono
 * app, becomes the runtime's `SessionTransportRegistry({ kind: 'web' })` (docs/apply.md):
 *
 * 1. `new Map()` → `new SessionTransportRegistry({ kind: 'web' })`;
 * 2. `sessionIdGenerator: g` → `sessionIdGenerator: transports.sessionIdGenerator(g)`;
 * 3. in each route handler that uses the registry (itself, or through a helper function it calls),
 *    just before the first statement that uses it (so the handler's own checks, such as
 *    authentication, still run first):
 *    `const sessionResponse = await transports.prepareRequest(c.req.raw); if (sessionResponse) return sessionResponse;`
 *    (restore on an unknown id, 404, DELETE, GET from the shared session streams);
 * 4. `transports.entry((request) => app.fetch(request))` after the route: a replica that has never
 *    seen a session rebuilds it by running the stored `initialize` (then the rest of the handshake)
 *    through the app itself, so the server's own session-opening code needs no extraction and the
 *    runtime never calls the transport directly (packages/runtime/src/web-entry.ts).
 *
 * In a bundle, hono and @hono/mcp are recognized by the bundled module that declares their classes.
 *
 * It takes the `transport-registry` findings whose transport is web-standard (it runs before that
 * transform, which rewrites Node transports only). Where the platform cannot hold a Redis connection
 * (a Cloudflare Worker or an edge function: no TCP sockets) it says so in a marker instead of
 * generating code that cannot run. Anything else web-standard gets a marker with the reason.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Node, SyntaxKind, type ArrowFunction, type FunctionExpression, type Identifier, type SourceFile, type VariableDeclaration } from 'ts-morph';
import { bundleSegments, segmentAt } from '../src/analyzer/bundle.js';
import { indentOf } from '../src/apply/edits.js';
import { defineTransform, type LocatedFinding, type TransformContext } from './define-transform.js';
import { uniqueName } from './support/unique-name.js';

const WEB_TRANSPORT = 'WebStandardStreamableHTTPServerTransport';
/**
 * Transports that handle a framework's request object rather than a `Request` (hono's `@hono/mcp`):
 * a restored session's handshake is replayed through the app's entry point, whose route hands each
 * message to the transport in the framework's own context (packages/runtime/src/web-entry.ts).
 */
const CONTEXT_TRANSPORT = 'StreamableHTTPTransport';
const CONTEXT_TRANSPORT_MODULE = '@hono/mcp';
const HONO_MODULE = 'hono';
const HONO_ROUTE = /^(all|post|get|delete|on|use)$/;
type Handler = ArrowFunction | FunctionExpression;
/** A use of the registry in a route handler: a reference, or a call of a helper that holds one. */
type Use = { handler: Handler; app: string; node: Node };

export default defineTransform({
  id: 'web-transport-registry',
  title: 'Registry of web-standard transports → runtime registry restored through the app entry point',
  fixes: ['no-session-transport-registry', 'no-stateful-session-id-generator'],
  run(ctx) {
    const open = ctx.allFindings.filter((f) => f.finding.fix === 'transform:transport-registry' && !ctx.isHandled(f));
    const generators = open.filter((f) => f.finding.ruleId === 'no-stateful-session-id-generator' && webCtor(f) !== undefined);
    for (const f of open) {
      if (f.finding.ruleId !== 'no-session-transport-registry') continue;
      const gen = generators.find((g) => g.sourceFile === f.sourceFile && feeds(g, f));
      if (!gen) continue;
      const reason = rewrite(ctx, f, gen);
      if (reason) {
        ctx.todo(f, reason);
        if (!ctx.isHandled(gen)) ctx.todo(gen, reason);
      }
    }
    for (const g of generators) {
      if (ctx.isHandled(g)) continue;
      // Already wrapped by an earlier run: nothing to do.
      const init = Node.isPropertyAssignment(g.node) ? g.node.getInitializer() : undefined;
      if (init && Node.isCallExpression(init) && /\.sessionIdGenerator$/.test(init.getExpression().getText())) {
        ctx.skip(g);
        continue;
      }
      const ctor = webCtor(g)!;
      ctx.todo(g, platformLimit(ctx, g.sourceFile) ?? `this sessionful \`${ctor}\` is not kept in a \`Map\` registry apply could rewrite: keep it in a \`new SessionTransportRegistry({ kind: 'web' })\` (@mcp-migrate/runtime), call \`registry.prepareRequest(request)\` first in the handler and register \`registry.entry((request) => app.fetch(request))\` (docs/apply.md), or run the server behind \`mcp-migrate proxy --upstream <its URL>\``);
    }
  },
});

/** The constructor name when the finding's transport is web-standard (or a framework-context transport). */
function webCtor(g: LocatedFinding): string | undefined {
  const created = g.node.getParent()?.getParent();
  if (!created || !Node.isNewExpression(created)) return undefined;
  const ctor = created.getExpression().getText().split('.').at(-1)!;
  if (ctor === WEB_TRANSPORT) return ctor;
  const expr = created.getExpression();
  const id = Node.isPropertyAccessExpression(expr) ? expr.getNameNode() : expr;
  return moduleOf(id) === CONTEXT_TRANSPORT_MODULE && isClassNamed(id, CONTEXT_TRANSPORT) ? CONTEXT_TRANSPORT : undefined;
}

/**
 * The module an identifier's declaration comes from: the specifier it is imported from, or, in a
 * bundle, the package whose bundled module declares it (src/analyzer/bundle.ts); `undefined` for
 * the application's own code or a global.
 */
function moduleOf(id: Node): string | undefined {
  const d = id.getSymbol()?.getDeclarations()[0];
  if (!d) return undefined;
  const imp = d.getFirstAncestorByKind(SyntaxKind.ImportDeclaration);
  if (imp) return imp.getModuleSpecifierValue();
  const segments = bundleSegmentsOf(d.getSourceFile());
  return segments ? segmentAt(segments, d.getStart())?.dependency?.name : undefined;
}

const segmentsByFile = new WeakMap<SourceFile, ReturnType<typeof bundleSegments> | null>();
function bundleSegmentsOf(sf: SourceFile): ReturnType<typeof bundleSegments> {
  if (!segmentsByFile.has(sf)) segmentsByFile.set(sf, bundleSegments(sf.getFilePath(), sf.getFullText()) ?? null);
  return segmentsByFile.get(sf) ?? undefined;
}

/**
 * Whether `id` names the class `name`: imported under that name, or, in a bundle, declared as that
 * class (a bundler renames a class whose name is taken, `var StreamableHTTPTransport2 = class …`,
 * but keeps the name a class expression gives itself or the name of the variable holding it).
 */
function isClassNamed(id: Node, name: string): boolean {
  const d = id.getSymbol()?.getDeclarations()[0];
  if (!d) return false;
  if (Node.isImportSpecifier(d)) return d.getName() === name;
  if (Node.isClassDeclaration(d)) return d.getName() === name;
  if (Node.isVariableDeclaration(d)) {
    const init = d.getInitializer();
    const own = init && Node.isClassExpression(init) ? init.getName() : undefined;
    return own === name || own === `_${name}` || d.getName().replace(/\d+$/, '') === name;
  }
  return false;
}

function feeds(g: LocatedFinding, registry: LocatedFinding): boolean {
  const decl = registry.node.getParent();
  if (!decl || !Node.isVariableDeclaration(decl)) return false;
  return new RegExp(`\\b${decl.getName()}\\b`).test(g.node.getParentOrThrow().getText());
}

/** Why the runtime's Redis stores cannot run where this file runs, if they cannot. */
function platformLimit(ctx: TransformContext, sf: SourceFile): string | undefined {
  const worker =
    sf.getImportDeclarations().some((d) => d.getModuleSpecifierValue().startsWith('cloudflare:')) || hasUp(path.dirname(sf.getFilePath()), ctx.root, ['wrangler.toml', 'wrangler.json', 'wrangler.jsonc']);
  const edge = sf.getVariableDeclarations().some((v) => v.getName() === 'runtime' && v.getInitializer()?.getText().replace(/['"`]/g, '') === 'edge' && v.getVariableStatement()?.isExported());
  if (!worker && !edge) return undefined;
  const where = worker ? 'a Cloudflare Worker' : 'an edge function';
  return `this server runs in ${where}, which cannot open the TCP connection to Redis that the runtime's shared session store needs (ioredis), so apply generated nothing here: keep the sessions in a Durable Object (the \`agents\` package's McpAgent routes each session to one), or run the server on Node, Bun or Deno behind a load balancer with \`mcp-migrate apply\` there, or behind \`mcp-migrate proxy --upstream <its URL>\``;
}

function hasUp(dir: string, root: string, names: string[]): boolean {
  for (let d = dir; ; d = path.dirname(d)) {
    if (names.some((n) => existsSync(path.join(d, n)))) return true;
    if (d === root || path.dirname(d) === d || !d.startsWith(root)) return false;
  }
}

/** Rewrites one registry of web-standard transports; returns the reason when it cannot. */
function rewrite(ctx: TransformContext, f: LocatedFinding, gen: LocatedFinding): string | undefined {
  const sf = f.sourceFile;
  const limit = platformLimit(ctx, sf);
  if (limit) return limit;
  const decl = f.node.getParent();
  if (!decl || !Node.isVariableDeclaration(decl) || !Node.isIdentifier(decl.getNameNode())) {
    return "a registry that is not a plain variable (class field, property, parameter): replace it by hand with `new SessionTransportRegistry({ kind: 'web' })` from @mcp-migrate/runtime (docs/apply.md)";
  }
  const name = decl.getName();
  const init = decl.getInitializer();
  if (!init || !Node.isNewExpression(init) || init.getExpression().getText() !== 'Map' || init.getArguments().length > 0) {
    return "the registry is not an empty `new Map()`: replace it by hand with `new SessionTransportRegistry({ kind: 'web' })` from @mcp-migrate/runtime (docs/apply.md)";
  }
  const refs = (decl.getNameNode() as Identifier).findReferencesAsNodes();
  if (refs.some((r) => r.getSourceFile() !== sf)) return "the registry is used from other files: replace it by hand with `new SessionTransportRegistry({ kind: 'web' })`, call `prepareRequest` in each handler and register `entry` (docs/apply.md)";
  const handlers = new Map<Handler, string>();
  const uses: Node[] = [];
  for (const r of refs) {
    if (r.getParent() === decl) continue;
    for (const u of usesOf(r)) {
      if (typeof u === 'string') return u;
      handlers.set(u.handler, u.app);
      uses.push(u.node);
    }
  }
  if (handlers.size === 0) return 'no hono route handler uses the registry: call `registry.prepareRequest(request)` first in the request handler and register `registry.entry(fetch)` with the server\'s web-standard entry point by hand (docs/apply.md)';
  const apps = new Set(handlers.values());
  if (apps.size > 1) return 'the registry is used by the routes of more than one hono app: register `registry.entry(…)` with the app that serves the MCP endpoint by hand (docs/apply.md)';
  const [app] = apps as Set<string>;
  const mounted = mountedApp(sf, app!);
  if (mounted) return mounted;

  // ---- edits
  const typeArg = typeArgOf(decl);
  const registryType = `SessionTransportRegistry${typeArg ? `<${typeArg}>` : ''}`;
  ctx.replace(sf, init.getStart(), init.getEnd(), `new ${registryType}({ kind: 'web' })`);
  const typeNode = decl.getTypeNode();
  if (typeNode) ctx.replace(sf, typeNode.getStart(), typeNode.getEnd(), registryType);
  ctx.importRuntime(sf, 'SessionTransportRegistry');
  const prop = gen.node;
  if (Node.isPropertyAssignment(prop)) {
    const g = prop.getInitializerOrThrow();
    ctx.replace(sf, g.getStart(), g.getEnd(), `${name}.sessionIdGenerator(${g.getText()})`);
  } else if (Node.isShorthandPropertyAssignment(prop)) {
    ctx.replace(sf, prop.getStart(), prop.getEnd(), `sessionIdGenerator: ${name}.sessionIdGenerator(sessionIdGenerator)`);
  }
  const text = sf.getFullText();
  let last = 0;
  for (const h of handlers.keys()) {
    const body = h.getBody();
    if (!Node.isBlock(body)) return 'the route handler has no block body to start with `prepareRequest`';
    const c = h.getParameters()[0]!.getName();
    // Before the first statement that uses the registry: what the handler checks first (authentication,
    // the request's shape) still runs first, for every request.
    const statements = body.getStatements();
    const first = statements.find((st) => uses.some((r) => r.getStart() >= st.getStart() && r.getEnd() <= st.getEnd())) ?? statements[0];
    const variable = uniqueName(sf, 'sessionResponse');
    const guard = `const ${variable} = await ${name}.prepareRequest(${c}.req.raw);`;
    if (first) {
      const indent = indentOf(text, first.getStart());
      ctx.insert(sf, first.getStart(), `${guard}\n${indent}if (${variable}) return ${variable};\n${indent}`);
    } else ctx.insert(sf, body.getStart() + 1, ` ${guard} if (${variable}) return ${variable}; `);
    if (!h.isAsync()) ctx.insert(sf, h.getStart(), 'async ');
    last = Math.max(last, topStatement(h).getEnd());
  }
  ctx.insert(sf, last, `\n${indentOf(text, last)}/** Restores a session on a replica that has never seen it by running the stored \`initialize\` through the app (mcp-migrate apply). */\n${name}.entry((request) => ${app}.fetch(request));`);
  ctx.changed(f, `\`${name}\` is a SessionTransportRegistry for web-standard transports: handshakes are stored, sessions restored on any replica by running the stored \`initialize\` through \`${app}.fetch\`, unknown ids get 404 (${handlers.size} route handler${handlers.size === 1 ? '' : 's'} guarded)`);
  ctx.changed(gen, `\`sessionIdGenerator\` re-issues the stored id when \`${name}\` restores a session`);
  return undefined;
}

/**
 * The route handlers that use the registry through `ref`: the one it is in, or, for a reference in
 * a helper function (`const sessionTransport = (id) => transports.get(id)`), each handler that calls
 * that helper; a reason when one is a handler apply cannot guard.
 */
function usesOf(ref: Node): (Use | string)[] {
  const h = honoHandler(ref);
  if (h) return [typeof h === 'string' ? h : { ...h, node: ref }];
  const fn = ref.getFirstAncestor((a): a is Handler => Node.isArrowFunction(a) || Node.isFunctionExpression(a));
  const holder = fn?.getParent();
  if (!holder || !Node.isVariableDeclaration(holder) || !Node.isIdentifier(holder.getNameNode())) return [];
  const out: (Use | string)[] = [];
  for (const call of (holder.getNameNode() as Identifier).findReferencesAsNodes()) {
    if (call === holder.getNameNode()) continue;
    const c = honoHandler(call);
    if (c) out.push(typeof c === 'string' ? c : { ...c, node: call });
  }
  return out;
}

/**
 * The hono route handler (`app.all('/mcp', async (c) => …)`) a registry reference is in, with the
 * app's name; `undefined` when the reference is not in one; a reason when it is in a handler apply
 * cannot guard.
 */
function honoHandler(ref: Node): { handler: Handler; app: string } | string | undefined {
  let fn = ref.getFirstAncestor((a): a is Handler => Node.isArrowFunction(a) || Node.isFunctionExpression(a));
  while (fn) {
    const call = fn.getParent();
    if (call && Node.isCallExpression(call) && call.getArguments().includes(fn)) {
      const callee = call.getExpression();
      if (Node.isPropertyAccessExpression(callee) && HONO_ROUTE.test(callee.getName()) && Node.isIdentifier(callee.getExpression()) && isHonoApp(callee.getExpression() as Identifier)) {
        if (fn.getParameters().length < 1) return 'the route handler takes no context parameter';
        return { handler: fn, app: callee.getExpression().getText() };
      }
    }
    fn = fn.getFirstAncestor((a): a is Handler => Node.isArrowFunction(a) || Node.isFunctionExpression(a));
  }
  return undefined;
}

/** Whether `id` holds a hono app: `new Hono()` (imported from hono, or bundled from its package), possibly chained (`.basePath('/api')`). */
function isHonoApp(id: Identifier): boolean {
  const d = id.getSymbol()?.getDeclarations()[0];
  if (!d || !Node.isVariableDeclaration(d)) return false;
  let init = d.getInitializer();
  // `new Hono().basePath('/api')`
  while (init && Node.isCallExpression(init) && Node.isPropertyAccessExpression(init.getExpression())) init = (init.getExpression() as import('ts-morph').PropertyAccessExpression).getExpression();
  if (!init || !Node.isNewExpression(init)) return false;
  const ctor = init.getExpression();
  return ctor.getText() === 'Hono' || (Node.isIdentifier(ctor) && moduleOf(ctor) === HONO_MODULE);
}

/** Why `app.fetch` is not the entry point that serves the route (the app is mounted into another one). */
function mountedApp(sf: SourceFile, app: string): string | undefined {
  const d = sf.getVariableDeclaration(app);
  const refs = d ? (d.getNameNode() as Identifier).findReferencesAsNodes() : [];
  for (const r of refs) {
    const call = r.getParent();
    if (call && Node.isCallExpression(call) && call.getArguments().includes(r)) {
      const callee = call.getExpression();
      if (Node.isPropertyAccessExpression(callee) && callee.getName() === 'route') {
        return `\`${app}\` is mounted into another app (\`${callee.getText()}(…)\`), so \`${app}.fetch\` does not serve the MCP path: register \`registry.entry((request) => <root app>.fetch(request))\` by hand (docs/apply.md)`;
      }
    }
  }
  return undefined;
}

function typeArgOf(decl: VariableDeclaration): string | undefined {
  const init = decl.getInitializer();
  const fromNew = init && Node.isNewExpression(init) ? init.getTypeArguments()[1]?.getText() : undefined;
  const t = decl.getTypeNode();
  return fromNew ?? (t && Node.isTypeReference(t) ? t.getTypeArguments()[1]?.getText() : undefined);
}

/** The statement holding `n` directly in a block or the file (the route registration, in the app's scope). */
function topStatement(n: Node): Node {
  let cur: Node = n;
  for (;;) {
    const parent = cur.getParent();
    if (!parent || Node.isSourceFile(parent) || Node.isBlock(parent) || Node.isModuleBlock(parent)) return cur;
    cur = parent;
  }
}
