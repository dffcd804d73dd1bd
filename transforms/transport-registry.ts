/**
 * `transport-registry`: the `Map` (or object) of transports keyed by session id, with its
 * `sessionIdGenerator`, becomes the runtime's `SessionTransportRegistry` (docs/apply.md):
 *
 * 1. `const transports = new Map()` → `new SessionTransportRegistry()` (object registries: element
 *    accesses become `get`/`set`/`delete`/`has`);
 * 2. `sessionIdGenerator: g` → `sessionIdGenerator: transports.sessionIdGenerator(g)`, so a restore
 *    re-issues the stored id;
 * 3. the server's session-opening code (the statements before `transport.handleRequest(…)` in the
 *    branch that creates the transport) moves into `async function openSession(…)`, registered with
 *    `transports.opener(openSession)`; the branch calls it;
 * 4. every request handler that uses the registry starts with
 *    `if (!(await transports.prepareNode(req, res))) return;` (restore on an unknown id, 404, DELETE).
 *
 * Anything else (SSE transports, web-standard transports, opening code that depends on other
 * handler locals, registries used in ways a Map cannot express) gets an `@mcp-migrate-todo` marker.
 */
import { Node, SyntaxKind, type ArrowFunction, type FunctionDeclaration, type FunctionExpression, type SourceFile, type Statement } from 'ts-morph';
import { indentOf } from '../src/apply/edits.js';
import { defineTransform, type LocatedFinding, type TransformContext } from './define-transform.js';

type Fn = ArrowFunction | FunctionExpression | FunctionDeclaration;
const NODE_TRANSPORTS = /^(StreamableHTTPServerTransport|NodeStreamableHTTPServerTransport)$/;

export default defineTransform({
  id: 'transport-registry',
  title: 'Session transport registry → runtime registry with handshake replay',
  fixes: ['no-session-transport-registry', 'no-stateful-session-id-generator'],
  run(ctx) {
    const generators = ctx.findings.filter((f) => f.finding.ruleId === 'no-stateful-session-id-generator');
    for (const f of ctx.findings) {
      if (f.finding.ruleId !== 'no-session-transport-registry') continue;
      const reason = rewriteRegistry(ctx, f, generators);
      if (reason) ctx.todo(f, reason);
    }
    for (const g of generators) {
      if (ctx.isHandled(g)) continue;
      const prop = g.node;
      const init = Node.isPropertyAssignment(prop) ? prop.getInitializer() : undefined;
      // Already wrapped by an earlier run: nothing to do.
      if (init && Node.isCallExpression(init) && /\.sessionIdGenerator$/.test(init.getExpression().getText())) ctx.skip(g);
      else ctx.todo(g, 'this sessionful transport is not registered in a session registry apply could rewrite: create it through a SessionTransportRegistry (@mcp-migrate/runtime; see docs/apply.md), or run the server behind `mcp-migrate proxy`');
    }
  },
});

/** Rewrites one registry; returns the reason when it cannot. */
function rewriteRegistry(ctx: TransformContext, f: LocatedFinding, generators: LocatedFinding[]): string | undefined {
  const sf = f.sourceFile;
  const decl = f.node.getParent();
  if (!decl || !Node.isVariableDeclaration(decl) || !Node.isIdentifier(decl.getNameNode())) {
    return 'a registry that is not a plain variable (class field, property, parameter): replace it by hand with `new SessionTransportRegistry()` from @mcp-migrate/runtime (see docs/apply.md)';
  }
  const name = decl.getName();
  const init = decl.getInitializer();
  const isMap = !!init && Node.isNewExpression(init) && init.getExpression().getText() === 'Map' && init.getArguments().length === 0;
  const isObject = !!init && Node.isObjectLiteralExpression(init) && init.getProperties().length === 0;
  if (!isMap && !isObject) return 'the registry is not an empty `new Map()` or `{}`: replace it by hand with `new SessionTransportRegistry()` from @mcp-migrate/runtime';

  // The generator (and the transport construction) that feeds this registry.
  const gen = generators.find((g) => g.sourceFile === sf && mentions(g.node.getParentOrThrow(), name)) ?? generators.filter((g) => g.sourceFile === sf).at(0);
  if (!gen) {
    return 'no sessionful Streamable HTTP transport feeds this registry (a legacy SSE transport, or one created elsewhere): SSE sessions cannot be restored by replay; move the server to Streamable HTTP, or run it behind `mcp-migrate proxy`';
  }
  const options = gen.node.getParentOrThrow();
  const created = options.getParent();
  if (!created || !Node.isNewExpression(created)) return 'the transport options are not passed to `new <Transport>(…)` directly: create the transport through the registry by hand (docs/apply.md)';
  const ctor = created.getExpression().getText().split('.').at(-1)!;
  if (!NODE_TRANSPORTS.test(ctor)) {
    return `\`${ctor}\` is not a Node Streamable HTTP transport apply can rewrite (web-standard transports: call \`registry.prepareRequest(request)\` by hand, see docs/apply.md)`;
  }

  // References of the registry.
  const allRefs = (decl.getNameNode() as import('ts-morph').Identifier).findReferencesAsNodes();
  const refs = allRefs.filter((r) => r.getSourceFile() === sf);
  if (allRefs.some((r) => r.getSourceFile() !== sf)) {
    return 'the registry is used from other files: replace it by hand with `new SessionTransportRegistry()` and call `prepareNode` in each handler (docs/apply.md)';
  }
  const objectEdits: Array<[number, number, string]> = [];
  if (isObject) {
    for (const r of refs) {
      const edit = objectAccess(r, name);
      if (edit === undefined) return `\`${name}\` is used as a plain object (${r.getParentOrThrow().getText().slice(0, 60)}): replace it by hand with a SessionTransportRegistry`;
      if (edit) objectEdits.push(edit);
    }
  }

  // The session-opening code.
  const openStmt = statementIn(created);
  const block = openStmt?.getParent();
  if (!openStmt || !block || !Node.isBlock(block)) return 'the transport is not created in a block of statements apply can extract; extract the session-opening code into a function and register it with `transports.opener(fn)` (docs/apply.md)';
  const handler = block.getFirstAncestor((a): a is Fn => Node.isArrowFunction(a) || Node.isFunctionExpression(a) || Node.isFunctionDeclaration(a));
  if (!handler) return 'the transport is not created inside a request handler';
  const transportVar = transportVariable(openStmt);
  if (!transportVar) return 'the new transport is not assigned to a variable (`transport = new …` or `const transport = new …`)';
  const statements = block.getStatements();
  const openIndex = statements.indexOf(openStmt);
  const handleIndex = statements.findIndex((s, i) => i > openIndex && new RegExp(`\\b${transportVar}\\.handleRequest\\(`).test(s.getText()));
  if (handleIndex < 0) return `no \`${transportVar}.handleRequest(…)\` follows the transport's creation in the same block`;
  const extracted = statements.slice(0, handleIndex);
  const rest = statements.slice(handleIndex);
  const params = handler.getParameters();
  const paramNames = new Set(params.map((p) => p.getName()));
  const extractedStart = extracted[0]!.getStart();
  const extractedEnd = extracted.at(-1)!.getEnd();
  const inExtracted = (n: Node): boolean => n.getStart() >= extractedStart && n.getEnd() <= extractedEnd;
  const usedParams = new Set<string>();
  for (const s of extracted) {
    for (const id of s.getDescendantsOfKind(SyntaxKind.Identifier)) {
      const d = id.getSymbol()?.getDeclarations()[0];
      if (!d || d.getSourceFile() !== sf || !isWithin(d, handler) || inExtracted(d)) continue;
      if (Node.isParameterDeclaration(d) && d.getParent() === handler) {
        usedParams.add(id.getText());
        continue;
      }
      if (id.getText() === transportVar) continue;
      return `the session-opening code uses \`${id.getText()}\`, a local of the request handler: move what it needs into the opening code, then extract it into a function registered with \`${name}.opener(fn)\` (docs/apply.md)`;
    }
    if (s.getDescendantsOfKind(SyntaxKind.ReturnStatement).some((r) => r.getFirstAncestor((a) => Node.isFunctionLikeDeclaration(a)) === handler)) {
      return 'the session-opening code returns from the handler before the transport handles the request';
    }
  }
  for (const s of rest) {
    for (const id of s.getDescendantsOfKind(SyntaxKind.Identifier)) {
      const d = id.getSymbol()?.getDeclarations()[0];
      if (d && inExtracted(d) && id.getText() !== transportVar) return `\`${id.getText()}\`, declared in the session-opening code, is used after \`handleRequest\`; extract the opening code by hand (docs/apply.md)`;
    }
  }
  const [reqName, resName] = params.map((p) => p.getName());
  if (!reqName || !resName) return 'the request handler does not take `(req, res)`';

  // ---- edits
  const ts = ctx.isTypeScript(sf);
  const typeArg = registryType(decl, isObject);
  ctx.replace(sf, init!.getStart(), init!.getEnd(), `new SessionTransportRegistry${typeArg ? `<${typeArg}>` : ''}()`);
  const typeNode = decl.getTypeNode();
  if (typeNode) ctx.replace(sf, typeNode.getStart(), typeNode.getEnd(), `SessionTransportRegistry${typeArg ? `<${typeArg}>` : ''}`);
  ctx.importRuntime(sf, 'SessionTransportRegistry');
  // Edits inside the opening code are applied to the moved text; the others to the file.
  const inner: Array<[number, number, string]> = [];
  const edit = (s: number, e: number, t: string): void => {
    if (s >= extractedStart && e <= extractedEnd) inner.push([s, e, t]);
    else ctx.replace(sf, s, e, t);
  };
  for (const [s, e, t] of objectEdits) edit(s, e, t);

  // generator
  const genProp = gen.node;
  if (Node.isPropertyAssignment(genProp)) {
    const g = genProp.getInitializerOrThrow();
    edit(g.getStart(), g.getEnd(), `${name}.sessionIdGenerator(${g.getText()})`);
  } else if (Node.isShorthandPropertyAssignment(genProp)) {
    edit(genProp.getStart(), genProp.getEnd(), `sessionIdGenerator: ${name}.sessionIdGenerator(sessionIdGenerator)`);
  }

  // opener
  const text = sf.getFullText();
  let moved = text.slice(extractedStart, extractedEnd);
  for (const [s, e, t] of inner.sort((a, b) => b[0] - a[0])) moved = moved.slice(0, s - extractedStart) + t + moved.slice(e - extractedStart);
  const fnName = uniqueName(sf, 'openSession');
  const args = params.slice(0, Math.max(...[...usedParams].map((p) => [...paramNames].indexOf(p) + 1), 0)).map((p) => p.getName());
  const paramText = params.slice(0, args.length).map((p) => p.getText()).join(', ');
  const blockIndent = indentOf(text, extractedStart);
  const isDeclaredHere = Node.isVariableStatement(openStmt);
  const tvDecl = isDeclaredHere ? undefined : handler.getDescendantsOfKind(SyntaxKind.VariableDeclaration).find((v) => v.getName() === transportVar);
  const tvType = ts && tvDecl?.getTypeNode() ? `: ${tvDecl.getTypeNode()!.getText()}` : '';
  const outer = topStatement(handler);
  const outerIndent = indentOf(text, outer.getStart());
  const unit = indentUnit(text);
  const body = reindent(moved, blockIndent, outerIndent + unit);
  const fn =
    `\n${outerIndent}/** The server's session-opening code (mcp-migrate apply): also run, with the stored id, to restore a session on another replica. */\n` +
    `${outerIndent}async function ${fnName}(${paramText}) {\n` +
    (isDeclaredHere ? '' : `${outerIndent}${unit}let ${transportVar}${tvType};\n`) +
    `${outerIndent}${unit}${body}\n` +
    `${outerIndent}${unit}return ${transportVar};\n` +
    `${outerIndent}}\n` +
    `${outerIndent}${name}.opener(${fnName});`;
  ctx.insert(sf, outer.getEnd(), fn);
  ctx.replace(sf, extractedStart, extractedEnd, `${isDeclaredHere ? 'const ' : ''}${transportVar} = await ${fnName}(${args.join(', ')});`);

  // guards: every request handler that uses the registry (not the callbacks inside the opening code)
  const guarded = new Set<Fn>();
  for (const r of refs) {
    if (inExtracted(r)) continue;
    const h = r.getFirstAncestor((a: Node): a is Fn => (Node.isArrowFunction(a) || Node.isFunctionExpression(a) || Node.isFunctionDeclaration(a)) && a.getParameters().length >= 2 && /^(req|request)$/i.test(a.getParameters()[0]!.getName()));
    if (!h || guarded.has(h) || isWithin(h, handler) && h !== handler) continue;
    guarded.add(h);
    const hb = h.getBody();
    if (!hb || !Node.isBlock(hb)) continue;
    const first = hb.getStatements()[0];
    const [rq, rs] = h.getParameters().map((p) => p.getName());
    const guard = `if (!(await ${name}.prepareNode(${rq}, ${rs}))) return;`;
    if (first) ctx.insert(sf, first.getStart(), `${guard}\n${indentOf(text, first.getStart())}`);
    else ctx.insert(sf, hb.getStart() + 1, ` ${guard} `);
    if (!h.isAsync()) ctx.insert(sf, h.getStart(), 'async ');
  }
  ctx.changed(f, `\`${name}\` is a SessionTransportRegistry: handshakes are stored, sessions restored on any replica by replaying \`initialize\` through \`${fnName}\`, unknown ids get 404 (${guarded.size} handler${guarded.size === 1 ? '' : 's'} guarded)`);
  ctx.changed(gen, `\`sessionIdGenerator\` re-issues the stored id when \`${name}\` restores a session`);
  return undefined;
}

function mentions(n: Node, name: string): boolean {
  return new RegExp(`\\b${name}\\b`).test(n.getText());
}

function isWithin(n: Node, outer: Node): boolean {
  return n.getSourceFile() === outer.getSourceFile() && n.getStart() >= outer.getStart() && n.getEnd() <= outer.getEnd();
}

function statementIn(n: Node): Statement | undefined {
  let cur: Node | undefined = n;
  while (cur && !(Node.isStatement(cur) && Node.isBlock(cur.getParent() ?? cur))) cur = cur.getParent();
  return cur as Statement | undefined;
}

function transportVariable(stmt: Statement): string | undefined {
  if (Node.isVariableStatement(stmt)) {
    const d = stmt.getDeclarations()[0];
    return d && Node.isNewExpression(d.getInitializer() ?? stmt) ? d.getName() : undefined;
  }
  if (Node.isExpressionStatement(stmt)) {
    const e = stmt.getExpression();
    if (Node.isBinaryExpression(e) && e.getOperatorToken().getKind() === SyntaxKind.EqualsToken && Node.isIdentifier(e.getLeft())) return e.getLeft().getText();
  }
  return undefined;
}

/** The transport type for `SessionTransportRegistry<T>`, from `new Map<string, T>()` or the declared type. */
function registryType(decl: import('ts-morph').VariableDeclaration, isObject: boolean): string | undefined {
  const init = decl.getInitializer();
  if (init && Node.isNewExpression(init)) {
    const args = init.getTypeArguments();
    if (args[1]) return args[1].getText();
  }
  const t = decl.getTypeNode();
  if (!t) return undefined;
  if (Node.isTypeReference(t)) {
    const args = t.getTypeArguments();
    return args[1]?.getText();
  }
  if (isObject && Node.isTypeLiteral(t)) {
    const index = t.getIndexSignatures()[0];
    return index?.getReturnTypeNode()?.getText();
  }
  return undefined;
}

/** The edit for one reference of an object registry (`null`: the declaration itself; `undefined`: unsupported). */
function objectAccess(ref: Node, name: string): [number, number, string] | null | undefined {
  const p = ref.getParentOrThrow();
  if (Node.isVariableDeclaration(p)) return null;
  if (Node.isElementAccessExpression(p) && p.getExpression() === ref) {
    const key = p.getArgumentExpressionOrThrow().getText();
    const gp = p.getParentOrThrow();
    if (Node.isBinaryExpression(gp) && gp.getLeft() === p && gp.getOperatorToken().getKind() === SyntaxKind.EqualsToken) {
      return [gp.getStart(), gp.getEnd(), `${name}.set(${key}, ${gp.getRight().getText()})`];
    }
    if (Node.isDeleteExpression(gp)) return [gp.getStart(), gp.getEnd(), `${name}.delete(${key})`];
    return [p.getStart(), p.getEnd(), `${name}.get(${key})`];
  }
  if (Node.isBinaryExpression(p) && p.getRight() === ref && p.getOperatorToken().getKind() === SyntaxKind.InKeyword) {
    return [p.getStart(), p.getEnd(), `${name}.has(${p.getLeft().getText()})`];
  }
  return undefined;
}

/** The statement holding `fn` at the level of its enclosing block or file. */
function topStatement(fn: Node): Statement {
  let cur: Node = fn;
  for (;;) {
    const parent = cur.getParent();
    if (!parent) break;
    if (Node.isStatement(cur) && (Node.isSourceFile(parent) || Node.isBlock(parent) || Node.isModuleBlock(parent))) return cur;
    cur = parent;
  }
  return cur as Statement;
}

/** The file's indentation step: the smallest indentation of an indented line (two spaces by default). */
function indentUnit(text: string): string {
  let unit: string | undefined;
  for (const m of text.matchAll(/\n([ \t]+)[^\s*]/g)) if (!unit || m[1]!.length < unit.length) unit = m[1];
  return unit ?? '  ';
}

function reindent(code: string, from: string, to: string): string {
  return code
    .split('\n')
    .map((line, i) => (i === 0 ? line : line.startsWith(from) ? to + line.slice(from.length) : line))
    .join('\n');
}

function uniqueName(sf: SourceFile, base: string): string {
  const taken = new Set(sf.getDescendantsOfKind(SyntaxKind.Identifier).map((i) => i.getText()));
  let name = base;
  for (let i = 2; taken.has(name); i += 1) name = `${base}${i}`;
  return name;
}
