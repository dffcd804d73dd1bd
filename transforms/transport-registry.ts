/**
 * `transport-registry`: the `Map` (or object) of transports keyed by session id, with its
 * `sessionIdGenerator`, becomes the runtime's `SessionTransportRegistry` (docs/apply.md):
 *
 * 1. `new Map()` / `{}` → `new SessionTransportRegistry()`; a registry whose values are the server's
 *    own records holding the transport (`{ transport, open, lastActive }`) → `new
 *    SessionEntryRegistry((entry) => entry.transport)`; object registries' element accesses become
 *    `get`/`set`/`delete`/`has`. The registry may be a variable, a class field, a property of an object
 *    held by a variable, and be passed to functions of the same file (their parameters' types follow);
 * 2. `sessionIdGenerator: g` → `sessionIdGenerator: <registry>.sessionIdGenerator(g)`, so a restore
 *    re-issues the stored id;
 * 3. the session-opening code (`support/opening-code.ts`: from the transport's creation, with the
 *    declarations only it uses, to `handleRequest`; guards such as a capacity check stay in the
 *    handler) moves into `async function openSession(…)` registered with `<registry>.opener(…)` (a
 *    method of the class for a class field); the handler calls it, passing the handler's consts the
 *    code reads where they are known falsy (the `Mcp-Session-Id` header under `if (!sessionId && …)`),
 *    which a restore leaves `undefined`;
 * 4. every request handler that uses the registry starts with
 *    `if (!(await <registry>.prepareNode(req, res))) return;` (restore an unknown id, 404, DELETE).
 *
 * Anything else (SSE transports, web-standard transports, opening code that depends on other handler
 * locals, registries used in ways a Map cannot express) gets an `@mcp-migrate-todo` marker.
 */
import { Node, SyntaxKind, type Expression, type Identifier, type NewExpression, type SourceFile, type Statement, type VariableDeclaration } from 'ts-morph';
import { indentOf } from '../src/apply/edits.js';
import { defineTransform, type LocatedFinding, type TransformContext } from './define-transform.js';
import { findOpeningCode, isHandlerFn, type HandlerFn, type OpeningCode } from './support/opening-code.js';
import { locateRegistry, registryFromGenerator, type RegistryTarget } from './support/registry-target.js';
import { answeredValue, callerVaries, handlesRequests, requestNames } from './support/request-handler.js';
import { notNodeTransport } from './support/transport-kind.js';
import { uniqueName } from './support/unique-name.js';

const REGISTRY_CLASSES = /^(SessionTransportRegistry|SessionEntryRegistry)\b/;

type Shape = { kind: 'transport' } | { kind: 'entry'; property: string };

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
    // A registry no finding names (reached only through parameters): found from the transport it feeds.
    for (const g of generators) {
      if (ctx.isHandled(g)) continue;
      const decl = registryFromGenerator(g.node);
      const init = decl && Node.isVariableDeclaration(decl) ? decl.getInitializer() : undefined;
      if (!decl || (init && Node.isNewExpression(init) && REGISTRY_CLASSES.test(init.getExpression().getText()))) continue;
      const named = ctx.findings.some((f) => f.finding.ruleId === 'no-session-transport-registry' && (Node.isIdentifier(f.node) ? f.node.getParent() : f.node) === decl);
      if (named) continue;
      const reason = rewriteRegistry(ctx, g, generators, { decl, gen: g });
      if (reason) ctx.todo(g, reason);
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
function rewriteRegistry(ctx: TransformContext, f: LocatedFinding, generators: LocatedFinding[], from?: { decl: Node; gen: LocatedFinding }): string | undefined {
  const sf = f.sourceFile;
  const target = locateRegistry(from?.decl ?? f.node);
  if (typeof target === 'string') return target;
  const init = target.init;
  if (Node.isNewExpression(init) && REGISTRY_CLASSES.test(init.getExpression().getText())) return undefined;
  const isMap = Node.isNewExpression(init) && init.getExpression().getText() === 'Map' && init.getArguments().length === 0;
  const isObject = Node.isObjectLiteralExpression(init) && init.getProperties().length === 0;
  if (!isMap && !isObject) return `\`${target.name}\` is not an empty \`new Map()\` or \`{}\`: replace it by hand with \`new SessionTransportRegistry()\` from @mcp-migrate/runtime`;
  const simple = target.name.split('.').at(-1)!;

  // The generator (and the transport construction) that feeds this registry.
  const gen = from?.gen ?? generators.find((g) => g.sourceFile === sf && new RegExp(`\\b${simple}\\b`).test(g.node.getParentOrThrow().getText())) ?? generators.find((g) => g.sourceFile === sf);
  if (!gen) {
    return 'no sessionful Streamable HTTP transport feeds this registry (a legacy SSE transport, or one created elsewhere): SSE sessions cannot be restored by replay; move the server to Streamable HTTP, or run it behind `mcp-migrate proxy`';
  }
  const created = gen.node.getParentOrThrow().getParent();
  if (!created || !Node.isNewExpression(created)) return 'the transport options are not passed to `new <Transport>(…)` directly: create the transport through the registry by hand (docs/apply.md)';
  const opening = findOpeningCode(created);
  const kind = notNodeTransport(created, typeof opening === 'string' ? undefined : opening);
  if (kind) return kind;
  if (typeof opening === 'string') return opening;
  const shape = valueShape(target, opening.transportVar);
  if (typeof shape === 'string') return shape;
  const objectEdits: Array<[number, number, string]> = [];
  if (isObject) {
    for (const site of target.sites) {
      const edit = target.passed.has(site) ? null : objectAccess(site, ctx.isTypeScript(sf));
      if (edit === undefined) return `\`${target.name}\` is used as a plain object (${site.getParentOrThrow().getText().slice(0, 60)}): replace it by hand with a SessionTransportRegistry`;
      if (edit) objectEdits.push(edit);
    }
  }
  const asMethod = target.kind === 'field' && Node.isMethodDeclaration(opening.handler) && opening.handler.getParent() === target.classNode;
  const plan = checkOpeningCode(opening, asMethod);
  if (typeof plan === 'string') return plan;
  // The registry reaches the handler as its own parameter: the opener closes over it, so it is made in the handler.
  if (target.aliases.some((a) => a.getParent() === opening.handler)) plan.inside = true;
  if (plan.inside && asMethod) return 'the session-opening code of a method reads what its caller passed in: extract it into a method registered with `registry.opener(…)` by hand (docs/apply.md)';
  if (plan.inside) {
    const unstable = callerVaries(opening.handler);
    if (unstable) return unstable;
  }

  // ---- edits
  const ts = ctx.isTypeScript(sf);
  const inner: Array<[number, number, string]> = [];
  const edit = (s: number, e: number, t: string): void => {
    if (s >= opening.start && e <= opening.end) inner.push([s, e, t]);
    else ctx.replace(sf, s, e, t);
  };
  for (const [s, e, t] of objectEdits) edit(s, e, t);
  const genAccess = accessAt(target, gen.node);
  const genProp = gen.node;
  if (Node.isPropertyAssignment(genProp)) {
    // `stateless ? undefined : randomUUID` too: the wrapper keeps `undefined` (a stateless transport).
    const g = genProp.getInitializerOrThrow();
    edit(g.getStart(), g.getEnd(), `${genAccess}.sessionIdGenerator(${g.getText()})`);
  } else if (Node.isShorthandPropertyAssignment(genProp)) {
    edit(genProp.getStart(), genProp.getEnd(), `sessionIdGenerator: ${genAccess}.sessionIdGenerator(sessionIdGenerator)`);
  }
  const fnName = uniqueName(sf, 'openSession');
  const { args, callArgs, params } = openerParams(opening, plan, ctx.isTypeScript(sf));
  const registryText = newRegistry(target, shape, ts, isObject) + (asMethod ? `.opener((${args.join(', ')}) => this.${fnName}(${args.join(', ')}))` : '');
  ctx.replace(sf, init.getStart(), init.getEnd(), registryText);
  for (const t of target.typeNodes) {
    const type = registryTypeText(t, shape);
    if (type) ctx.replace(sf, t.getStart(), t.getEnd(), type);
  }
  ctx.importRuntime(sf, shape.kind === 'entry' ? 'SessionEntryRegistry' : 'SessionTransportRegistry');
  for (const r of opening.earlyExit?.returns ?? []) inner.push([r.getStart(), r.getEnd(), 'return undefined;']);
  insertOpener(ctx, sf, target, opening, inner, { fnName, params, asMethod, ts, created, plan });
  const call = `await ${asMethod ? 'this.' : ''}${fnName}(${callArgs.join(', ')})`;
  const tv = opening.transportVar;
  const exit = opening.earlyExit ? `return${opening.earlyExit.value ? ` ${opening.earlyExit.value}` : ''};` : '';
  // With a failure exit the opener may resolve `undefined`: checked before the handler's (typed) variable gets it.
  const callText = !opening.earlyExit
    ? `${opening.declaredHere ? 'const ' : ''}${tv} = ${call};`
    : opening.declaredHere
      ? `const ${tv} = ${call};\n${indentOf(sf.getFullText(), opening.start)}if (!${tv}) ${exit}`
      : openedCheck(sf, opening.start, call, exit, tv);
  ctx.replace(sf, opening.start, opening.end, callText);
  const guarded = insertGuards(ctx, sf, target, opening, plan);
  const what = shape.kind === 'entry' ? `a SessionEntryRegistry (its entries' \`${shape.property}\` are the transports)` : 'a SessionTransportRegistry';
  if (f !== gen) ctx.changed(f, `\`${target.name}\` is ${what}: handshakes are stored, sessions restored on any replica by replaying \`initialize\` through \`${fnName}\`, unknown ids get 404 (${guarded} handler${guarded === 1 ? '' : 's'} guarded)`);
  ctx.changed(gen, f === gen ? `\`${target.name}\` (reached through parameters) is ${what}: handshakes are stored, sessions restored on any replica through \`${fnName}\`, unknown ids get 404 (${guarded} handler${guarded === 1 ? '' : 's'} guarded); \`sessionIdGenerator\` re-issues the stored id` : `\`sessionIdGenerator\` re-issues the stored id when \`${target.name}\` restores a session`);
  return undefined;
}

/** `const opened = await openSession(…); if (!opened) return …; transport = opened;` for a handler variable declared earlier. */
function openedCheck(sf: SourceFile, at: number, call: string, exit: string, transportVar: string): string {
  const opened = uniqueName(sf, 'opened');
  const indent = indentOf(sf.getFullText(), at);
  return `const ${opened} = ${call};\n${indent}if (!${opened}) ${exit}\n${indent}${transportVar} = ${opened};`;
}

/** What the registry stores: the transport itself, or a record with the transport in one property. */
function valueShape(target: RegistryTarget, transportVar: string): Shape | string {
  const values: Expression[] = [];
  for (const site of target.sites) {
    const p = site.getParent();
    if (p && Node.isPropertyAccessExpression(p) && p.getName() === 'set' && Node.isCallExpression(p.getParent()) && p.getExpression() === site) {
      const v = (p.getParent() as import('ts-morph').CallExpression).getArguments()[1];
      if (v) values.push(v as Expression);
    } else if (p && Node.isElementAccessExpression(p) && p.getExpression() === site) {
      const gp = p.getParent();
      if (gp && Node.isBinaryExpression(gp) && gp.getLeft() === p && gp.getOperatorToken().getKind() === SyntaxKind.EqualsToken) values.push(gp.getRight());
    }
  }
  if (values.length === 0) return `\`${target.name}\` is never given a transport in this file: replace it by hand with \`new SessionTransportRegistry()\` (docs/apply.md)`;
  const isTransport = (v: Node): boolean => stripNonNull(v).getText() === transportVar;
  if (values.every(isTransport)) return { kind: 'transport' };
  const props = values.map((value) => {
    // `const session = { transport, … }; sessions.set(id, session)`
    const v = Node.isIdentifier(value) ? initializerOf(value) : value;
    if (!v || !Node.isObjectLiteralExpression(v)) return undefined;
    const p = v.getProperties().find((x) => (Node.isShorthandPropertyAssignment(x) && x.getName() === transportVar) || (Node.isPropertyAssignment(x) && isTransport(x.getInitializerOrThrow())));
    return p && (Node.isShorthandPropertyAssignment(p) || Node.isPropertyAssignment(p)) ? p.getName() : undefined;
  });
  if (props.every((p) => p !== undefined && p === props[0])) return { kind: 'entry', property: props[0]! };
  return `the values of \`${target.name}\` are neither the transport nor records holding it in one property (${values[0]!.getText().slice(0, 60)}): replace it by hand with \`new SessionEntryRegistry((entry) => entry.transport)\` (docs/apply.md)`;
}

/** What an identifier refers to; for a shorthand property (`{ server }`), the variable, not the property. */
function declarationOf(id: Identifier): Node | undefined {
  const p = id.getParent();
  const symbol = p && Node.isShorthandPropertyAssignment(p) && p.getNameNode() === id ? p.getValueSymbol() : id.getSymbol();
  return symbol?.getDeclarations()[0];
}

function initializerOf(id: import('ts-morph').Identifier): Node | undefined {
  const d = id.getSymbol()?.getDeclarations()[0];
  return d && Node.isVariableDeclaration(d) ? d.getInitializer() : undefined;
}

function stripNonNull(n: Node): Node {
  return Node.isNonNullExpression(n) ? n.getExpression() : n;
}

/** How the opener is made from the opening code ({@link checkOpeningCode}). */
interface OpenerPlan {
  /** The names the handler passes to `handleRequest` as the request and the response. */
  request: [string, string];
  /** Declared and registered in the handler's body: the code reads what the handler's caller passed in (destructured parameters, the registry itself). */
  inside: boolean;
  /** Handler `let`s without initializer that the code assigns before reading them, and the handler does not read afterwards: declared again in the opener. */
  redeclared: VariableDeclaration[];
  /** Handler locals passed to the opener, `undefined` on a restore: known falsy there ({@link knownFalsy}), or read only on a failure exit. */
  locals: VariableDeclaration[];
}

/**
 * The opening code may use the handler's request and response, the handler's other parameters (then
 * the opener is made inside the handler), the transport variable, `this` as a method, and handler
 * locals that a restore can do without (see {@link OpenerPlan}); nothing else of the handler.
 */
function checkOpeningCode(opening: OpeningCode, asMethod: boolean): OpenerPlan | string {
  const { handler, start, end, transportVar } = opening;
  const request = requestNames(handler);
  if (!request) return 'the request handler does not take `(req, res)`';
  const plan: OpenerPlan = { request, inside: false, redeclared: [], locals: [] };
  const inside = (n: Node): boolean => n.getStart() >= start && n.getEnd() <= end;
  for (const s of opening.statements) {
    if (!asMethod && s.getDescendantsOfKind(SyntaxKind.ThisKeyword).some((t) => t.getFirstAncestor((a) => isHandlerFn(a) && !Node.isArrowFunction(a)) === handler)) {
      return 'the session-opening code uses `this`: extract it into a method registered with `registry.opener(…)` by hand (docs/apply.md)';
    }
    for (const id of s.getDescendantsOfKind(SyntaxKind.Identifier)) {
      const d = declarationOf(id);
      if (!d || d.getSourceFile() !== s.getSourceFile() || !within(d, handler) || inside(d)) continue;
      if (Node.isParameterDeclaration(d) && d.getParent() === handler) continue;
      if (Node.isBindingElement(d) && d.getFirstAncestorByKind(SyntaxKind.Parameter)?.getParent() === handler) {
        if (!request.includes(id.getText())) plan.inside = true;
        continue;
      }
      if (id.getText() === transportVar) continue;
      if (Node.isVariableDeclaration(d) && (knownFalsy(d, opening) || readOnlyOnFailure(d, opening))) {
        if (!plan.locals.includes(d)) plan.locals.push(d);
        continue;
      }
      if (Node.isVariableDeclaration(d) && assignedBeforeRead(d, opening) && !readAfter(d, opening)) {
        if (!plan.redeclared.includes(d)) plan.redeclared.push(d);
        continue;
      }
      return `the session-opening code uses \`${id.getText()}\`, a local of the request handler: move what it needs into the opening code, then extract it into a function registered with \`registry.opener(fn)\` (docs/apply.md)`;
    }
  }
  for (const id of handler.getDescendantsOfKind(SyntaxKind.Identifier)) {
    if (id.getStart() < end) continue;
    const d = declarationOf(id);
    if (d && inside(d) && id.getText() !== transportVar) return `\`${id.getText()}\`, declared in the session-opening code, is used after it; extract the opening code by hand (docs/apply.md)`;
  }
  plan.locals.sort((x, y) => x.getStart() - y.getStart());
  return plan;
}

/** A handler local the opening code reads only in `catch` blocks that end in one of its failure exits: a restore passes `undefined`. */
function readOnlyOnFailure(d: VariableDeclaration, opening: OpeningCode): boolean {
  const exits = opening.earlyExit?.returns ?? [];
  if (exits.length === 0 || !Node.isIdentifier(d.getNameNode())) return false;
  const refs = (d.getNameNode() as Identifier).findReferencesAsNodes().filter((r) => r.getStart() >= opening.start && r.getEnd() <= opening.end);
  return refs.every((r) => {
    const c = r.getFirstAncestorByKind(SyntaxKind.CatchClause);
    return !!c && exits.some((e) => within(e, c));
  });
}

/** A `let x;` of the handler that the opening code assigns (`x = …`, outside nested functions) before any other use of it there. */
function assignedBeforeRead(d: VariableDeclaration, opening: OpeningCode): boolean {
  const list = d.getParent();
  if (!Node.isVariableDeclarationList(list) || list.getDeclarationKind() === 'const' || d.getInitializer() || !Node.isIdentifier(d.getNameNode())) return false;
  const nested = (r: Node): boolean => r.getFirstAncestor((a) => a === opening.handler || Node.isArrowFunction(a) || Node.isFunctionLikeDeclaration(a)) !== opening.handler;
  const refs = (d.getNameNode() as Identifier).findReferencesAsNodes().filter((r) => r.getStart() >= opening.start && r.getEnd() <= opening.end && !nested(r));
  const first = refs.sort((x, y) => x.getStart() - y.getStart())[0];
  const assign = first?.getParent();
  return !!assign && Node.isBinaryExpression(assign) && assign.getLeft() === first && assign.getOperatorToken().getKind() === SyntaxKind.EqualsToken;
}

/** Whether the handler can read `d` after the opening code: in the statements that follow it in its block and in each enclosing block. */
function readAfter(d: VariableDeclaration, opening: OpeningCode): boolean {
  const refs = (d.getNameNode() as Identifier).findReferencesAsNodes();
  const readIn = (stmts: Node[]): boolean => stmts.some((st) => refs.some((r) => within(r, st)));
  const first = opening.statements[0]!;
  const block = first.getParentOrThrow() as import('ts-morph').Block;
  if (readIn(block.getStatements().filter((st) => st.getStart() >= opening.end))) return true;
  for (let cur: Node = block; cur !== opening.handler; cur = cur.getParentOrThrow()) {
    const parent = cur.getParentOrThrow();
    if (Node.isBlock(parent) && Node.isStatement(cur)) {
      const after = parent.getStatements().slice(parent.getStatements().indexOf(cur as Statement) + 1);
      if (readIn(after)) return true;
    }
  }
  return false;
}

/**
 * Arguments the handler passes to the opener, and their declarations: its leading parameters up to
 * the last one the opening code uses (the registry passes the restoring request's, `(req, res)`; for
 * a handler that destructures them, their names), then the locals of {@link OpenerPlan.locals}, which
 * a restore leaves `undefined` as in a creation without them.
 */
function openerParams(opening: OpeningCode, plan: OpenerPlan, ts: boolean): { args: string[]; callArgs: string[]; params: string } {
  const params = opening.handler.getParameters();
  const uses = (d: Node): boolean => opening.statements.some((s) => s.getDescendantsOfKind(SyntaxKind.Identifier).some((id) => declarationOf(id) === d));
  const locals = plan.locals;
  const localParams = locals.map((d) => (ts ? `${d.getName()}?: ${d.getType().getText(d)}` : d.getName()));
  if (!params.every((p) => Node.isIdentifier(p.getNameNode()))) {
    // Destructured: the request and the response by name (typed from their bindings in TypeScript).
    const bindings = params.flatMap((p) => p.getDescendantsOfKind(SyntaxKind.BindingElement));
    const typed = (n: string): string => {
      const b = bindings.find((x) => x.getName() === n);
      return ts && b ? `${n}: ${b.getType().getText(b)}` : n;
    };
    return { args: [...plan.request], callArgs: [...plan.request, ...locals.map((d) => d.getName())], params: [...plan.request.map(typed), ...localParams].join(', ') };
  }
  let used = 0;
  params.forEach((p, i) => {
    if (uses(p)) used = i + 1;
  });
  if (locals.length > 0) used = Math.max(used, Math.min(2, params.length));
  const leading = params.slice(0, used);
  // Contextually typed handler parameters (`createServer(async (req, res) => …)`) get their type written out.
  const typed = (p: import('ts-morph').ParameterDeclaration): string => (ts && !p.getTypeNode() ? `${p.getText()}: ${p.getType().getText(p)}` : p.getText());
  return {
    args: leading.map((p) => p.getName()),
    callArgs: [...leading.map((p) => p.getName()), ...locals.map((d) => d.getName())],
    params: [...leading.map((p) => (locals.length > 0 ? typed(p) : p.getText())), ...localParams].join(', '),
  };
}

/**
 * A `const` of the handler that the opening code can only see falsy: the code sits in the branch of an
 * `if` whose condition requires it (`!sessionId`, `!sessionId && isInitializeRequest(body)`, `sessionId
 * === undefined`, `== null`), or in the `else` of `if (sessionId)`. Typically the request's
 * `Mcp-Session-Id` header, absent on `initialize`; a restore, which has no such request, passes nothing.
 */
function knownFalsy(d: import('ts-morph').VariableDeclaration, opening: OpeningCode): boolean {
  const list = d.getParent();
  if (!Node.isVariableDeclarationList(list) || list.getDeclarationKind() !== 'const' || !Node.isIdentifier(d.getNameNode())) return false;
  const isD = (n: Node): boolean => Node.isIdentifier(n) && n.getSymbol()?.getDeclarations()[0] === d;
  const requiresFalsy = (c: Node): boolean => {
    const e = Node.isParenthesizedExpression(c) ? c.getExpression() : c;
    if (Node.isPrefixUnaryExpression(e) && e.getOperatorToken() === SyntaxKind.ExclamationToken) return isD(e.getOperand());
    if (!Node.isBinaryExpression(e)) return false;
    const op = e.getOperatorToken().getKind();
    if (op === SyntaxKind.AmpersandAmpersandToken) return requiresFalsy(e.getLeft()) || requiresFalsy(e.getRight());
    const nullish = (n: Node): boolean => n.getText() === 'undefined' || n.getKind() === SyntaxKind.NullKeyword;
    const eq = op === SyntaxKind.EqualsEqualsToken || (op === SyntaxKind.EqualsEqualsEqualsToken && e.getRight().getText() === 'undefined') || (op === SyntaxKind.EqualsEqualsEqualsToken && e.getLeft().getText() === 'undefined');
    return eq && ((isD(e.getLeft()) && nullish(e.getRight())) || (isD(e.getRight()) && nullish(e.getLeft())));
  };
  const first = opening.statements[0]!;
  for (let n: Node | undefined = first; n && n !== opening.handler; n = n.getParent()) {
    const p = n.getParent();
    if (!p || !Node.isIfStatement(p)) continue;
    if (p.getThenStatement() === n && requiresFalsy(p.getExpression())) return true;
    if (p.getElseStatement() === n && isD(p.getExpression())) return true;
  }
  return false;
}

function newRegistry(target: RegistryTarget, shape: Shape, ts: boolean, isObject: boolean): string {
  if (shape.kind === 'entry') {
    const v = ts ? valueTypeOf(target, isObject) : undefined;
    return `new SessionEntryRegistry((entry${v ? `: ${v}` : ''}) => entry.${shape.property})`;
  }
  const t = valueTypeOf(target, isObject);
  return `new SessionTransportRegistry${t ? `<${t}>` : ''}()`;
}

/** The value type of the registry's declared type (`Map<string, T>`, `Record<string, T>`, `{ [id: string]: T }`) or its `new Map<K, T>()`. */
function valueTypeOf(target: RegistryTarget, _isObject: boolean): string | undefined {
  if (Node.isNewExpression(target.init)) {
    const args = target.init.getTypeArguments();
    if (args[1]) return args[1].getText();
  }
  for (const t of target.typeNodes) {
    const v = declaredValueType(t);
    if (v) return v;
  }
  return undefined;
}

function declaredValueType(t: Node): string | undefined {
  if (Node.isTypeReference(t)) return t.getTypeArguments()[1]?.getText();
  if (Node.isTypeLiteral(t)) return t.getIndexSignatures()[0]?.getReturnTypeNode()?.getText();
  return undefined;
}

function registryTypeText(t: Node, shape: Shape): string | undefined {
  const v = declaredValueType(t);
  if (shape.kind === 'entry') return v ? `SessionEntryRegistry<${v}, ${v}['${shape.property}']>` : undefined;
  return `SessionTransportRegistry${v ? `<${v}>` : ''}`;
}

/** The registry expression at a location: the site text of the nearest site in the same function, else its name. */
function accessAt(target: RegistryTarget, at: Node): string {
  const fn = at.getFirstAncestor(isHandlerFn);
  const site = target.sites.find((s) => s.getFirstAncestor(isHandlerFn) === fn) ?? target.sites.find((s) => fn && within(s, fn));
  return site ? site.getText() : target.name;
}

/** The registry expression the handler's own code uses (its parameter, or the variable it sees). */
function accessIn(target: RegistryTarget, handler: HandlerFn): string {
  return (target.sites.find((s) => s.getFirstAncestor(isHandlerFn) === handler) ?? target.sites.find((s) => within(s, handler)))?.getText() ?? target.name;
}

function insertOpener(
  ctx: TransformContext,
  sf: SourceFile,
  target: RegistryTarget,
  opening: OpeningCode,
  inner: Array<[number, number, string]>,
  o: { fnName: string; params: string; asMethod: boolean; ts: boolean; created: NewExpression; plan: OpenerPlan },
): void {
  const text = sf.getFullText();
  let moved = text.slice(opening.start, opening.end);
  for (const [s, e, t] of inner.sort((a, b) => b[0] - a[0])) moved = moved.slice(0, s - opening.start) + t + moved.slice(e - opening.start);
  const tv = opening.transportVar;
  const tvDecl = opening.declaredHere ? undefined : opening.handler.getDescendantsOfKind(SyntaxKind.VariableDeclaration).find((v) => v.getName() === tv);
  const declared = o.ts ? (tvDecl?.getTypeNode()?.getText() ?? o.created.getExpression().getText()) : undefined;
  const handlerBody = opening.handler.getBody();
  const firstInHandler = handlerBody && Node.isBlock(handlerBody) ? handlerBody.getStatements()[0] : undefined;
  if (o.plan.inside && !firstInHandler) throw new Error('the opening code is in the handler, which has statements');
  const outer: Node = o.plan.inside ? firstInHandler! : o.asMethod ? opening.handler : topStatement(opening.handler);
  const outerIndent = indentOf(text, outer.getStart());
  const unit = indentUnit(text);
  const body = reindent(moved, indentOf(text, opening.start), outerIndent + unit);
  const doc = o.plan.inside
    ? `/** The server's session-opening code (mcp-migrate apply): also run, with the stored id, to restore a session on another replica; registered on each call, as it reads what the caller passes in (the same on every call). */`
    : `/** The server's session-opening code (mcp-migrate apply): also run, with the stored id, to restore a session on another replica. */`;
  const head = o.asMethod ? `${o.ts ? 'private ' : ''}async ${o.fnName}(${o.params})` : `async function ${o.fnName}(${o.params})`;
  const lets = o.plan.redeclared.map((d) => `${outerIndent}${unit}let ${d.getName()}${o.ts && d.getTypeNode() ? `: ${d.getTypeNode()!.getText()}` : ''};\n`).join('');
  const fn =
    `${outerIndent}${doc}\n` +
    `${outerIndent}${head} {\n` +
    (opening.declaredHere ? '' : `${outerIndent}${unit}let ${tv}${declared ? `: ${declared}` : ''};\n`) +
    lets +
    `${outerIndent}${unit}${body}\n` +
    `${outerIndent}${unit}return ${tv};\n` +
    `${outerIndent}}` +
    (o.asMethod ? '' : `\n${outerIndent}${o.plan.inside ? accessIn(target, opening.handler) : accessAt(target, opening.handler)}.opener(${o.fnName});`);
  if (o.plan.inside) {
    // First in the handler, then the guard: a restore needs the opener registered.
    const [rq, rs] = o.plan.request;
    const guard = `if (!(await ${accessIn(target, opening.handler)}.prepareNode(${rq}, ${rs}))) return${answeredValue(opening.handler)};`;
    ctx.insert(sf, outer.getStart(), `${fn.slice(outerIndent.length)}\n${outerIndent}${guard}\n${outerIndent}`);
    if (!opening.handler.isAsync()) ctx.insert(sf, Node.isMethodDeclaration(opening.handler) ? opening.handler.getNameNode().getStart() : opening.handler.getStart(), 'async ');
  }
  // After the handler's statement; before it when that statement returns the handler (the registration must run).
  else if (Node.isReturnStatement(outer)) ctx.insert(sf, outer.getStart(), `${fn.slice(outerIndent.length)}\n${outerIndent}`);
  else ctx.insert(sf, outer.getEnd(), `\n${o.asMethod ? '\n' : ''}${fn}`);
}

/** `if (!(await <registry>.prepareNode(req, res))) return;` first in every request handler that uses the registry. */
function insertGuards(ctx: TransformContext, sf: SourceFile, target: RegistryTarget, opening: OpeningCode, plan: OpenerPlan): number {
  const text = sf.getFullText();
  const guarded = new Set<HandlerFn>();
  // Guarded with the opener's registration (insertOpener).
  if (plan.inside) guarded.add(opening.handler);
  for (const site of target.sites) {
    if (site.getStart() >= opening.start && site.getEnd() <= opening.end) continue;
    const h = site.getFirstAncestor((a): a is HandlerFn => isHandlerFn(a) && handlesRequests(a));
    if (!h || guarded.has(h) || (within(h, opening.handler) && h !== opening.handler)) continue;
    const hb = h.getBody();
    if (!hb || !Node.isBlock(hb)) continue;
    guarded.add(h);
    const [rq, rs] = requestNames(h)!;
    const access = target.sites.find((s) => s.getFirstAncestor(isHandlerFn) === h)?.getText() ?? site.getText();
    const guard = `if (!(await ${access}.prepareNode(${rq}, ${rs}))) return${answeredValue(h)};`;
    const first = hb.getStatements()[0];
    if (first) ctx.insert(sf, first.getStart(), `${guard}\n${indentOf(text, first.getStart())}`);
    else ctx.insert(sf, hb.getStart() + 1, ` ${guard} `);
    if (!h.isAsync()) ctx.insert(sf, Node.isMethodDeclaration(h) ? h.getNameNode().getStart() : h.getStart(), 'async ');
  }
  return guarded.size;
}

function within(n: Node, outer: Node): boolean {
  return n.getSourceFile() === outer.getSourceFile() && n.getStart() >= outer.getStart() && n.getEnd() <= outer.getEnd();
}

/**
 * The edit for one site of an object registry (`null`: no change needed; `undefined`: unsupported).
 * In TypeScript a read whose value is used keeps the element access's type (`T`, not `Map.get`'s `T | undefined`) with `!`.
 */
function objectAccess(site: Expression, ts: boolean): [number, number, string] | null | undefined {
  const p = site.getParentOrThrow();
  const name = site.getText();
  if (Node.isVariableDeclaration(p)) return null;
  if (Node.isElementAccessExpression(p) && p.getExpression() === site) {
    const key = p.getArgumentExpressionOrThrow().getText();
    const gp = p.getParentOrThrow();
    if (Node.isBinaryExpression(gp) && gp.getLeft() === p && gp.getOperatorToken().getKind() === SyntaxKind.EqualsToken) {
      return [gp.getStart(), gp.getEnd(), `${name}.set(${key}, ${gp.getRight().getText()})`];
    }
    if (Node.isDeleteExpression(gp)) return [gp.getStart(), gp.getEnd(), `${name}.delete(${key})`];
    // Only where the value is used as one (assigned, declared, a member read), not where it is tested.
    const used = (Node.isBinaryExpression(gp) && gp.getRight() === p && gp.getOperatorToken().getKind() === SyntaxKind.EqualsToken) || Node.isVariableDeclaration(gp) || (Node.isPropertyAccessExpression(gp) && gp.getExpression() === p);
    return [p.getStart(), p.getEnd(), `${name}.get(${key})${ts && used ? '!' : ''}`];
  }
  if (Node.isBinaryExpression(p) && p.getRight() === site && p.getOperatorToken().getKind() === SyntaxKind.InKeyword) {
    return [p.getStart(), p.getEnd(), `${name}.has(${p.getLeft().getText()})`];
  }
  // `Object.entries(registry)` (and `keys`, `values`): this replica's sessions, as before.
  const callee = Node.isCallExpression(p) && p.getArguments().length === 1 ? p.getExpression().getText() : '';
  const method = /^Object\.(entries|keys|values)$/.exec(callee)?.[1];
  if (method) return [p.getStart(), p.getEnd(), `[...${name}.${method}()]`];
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
