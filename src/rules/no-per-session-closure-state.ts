import path from 'node:path';
import { ts } from 'ts-morph';
import { enclosingFunction, functionName, isFunctionLike, isInside, skipOuter, type FunctionLike, classNameOf } from '../analyzer/ast.js';
import { handlerRegistration, isReplayedHandler } from '../analyzer/handlers.js';
import { isUndefinedValue, sessionScope, type SessionField, type SessionScope } from '../analyzer/session-scope.js';
import { createRule, type RuleContext } from './create-rule.js';

const MUTATORS = new Set(['set', 'add', 'push', 'delete', 'clear', 'splice', 'unshift', 'pop', 'shift']);
const COLLECTION_INIT = /^(new (Map|Set|WeakMap|WeakSet|Array)\b|\[|\{)/;

interface Write {
  node: ts.Node;
  /** Inside a registered handler: runs on later requests of the session, not during the factory call. */
  inHandler: boolean;
  replayed: boolean;
}

/** The registered handler (tool, request, lifecycle hook) `node` runs in, below `outer`. */
function handlerBetween(node: ts.Node, outer: ts.Node): { replayed: boolean } | undefined {
  for (let f: FunctionLike | undefined = enclosingFunction(node); f && f !== outer; f = enclosingFunction(f)) {
    const reg = handlerRegistration(f);
    if (reg) return { replayed: isReplayedHandler(reg) };
  }
  return undefined;
}

/** Every write to `symbol` that happens inside a nested function of `factory`, with whether handshake replay re-runs it. */
function writesInClosures(ctx: RuleContext, factory: FunctionLike, symbol: ts.Symbol): Write[] {
  const writes: Write[] = [];
  const visit = (n: ts.Node): void => {
    let written: ts.Node | undefined;
    let clears = false;
    if (ts.isBinaryExpression(n) && n.operatorToken.kind >= ts.SyntaxKind.FirstAssignment && n.operatorToken.kind <= ts.SyntaxKind.LastAssignment) {
      const left = skipOuter(n.left);
      if (ts.isIdentifier(left)) {
        written = left;
        clears = n.operatorToken.kind === ts.SyntaxKind.EqualsToken && isUndefinedValue(n.right);
      } else if ((ts.isElementAccessExpression(left) || ts.isPropertyAccessExpression(left)) && ts.isIdentifier(skipOuter(left.expression))) written = skipOuter(left.expression);
    } else if ((ts.isPrefixUnaryExpression(n) || ts.isPostfixUnaryExpression(n)) && ts.isIdentifier(n.operand)) {
      written = n.operand;
    } else if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression) && MUTATORS.has(n.expression.name.text) && ts.isIdentifier(skipOuter(n.expression.expression))) {
      written = skipOuter(n.expression.expression);
    }
    if (written && !clears && ctx.flow.symbolAt(written) === symbol) {
      const fn = enclosingFunction(n);
      if (fn && fn !== factory) {
        const handler = handlerBetween(n, factory);
        writes.push({ node: n, inHandler: !!handler, replayed: !!handler?.replayed });
      }
    }
    ts.forEachChild(n, visit);
  };
  if (factory.body) ts.forEachChild(factory.body, visit);
  return writes;
}

function where(node: ts.Node): string {
  const sf = node.getSourceFile();
  return `${path.basename(sf.fileName)}:${sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1}`;
}

const REPLAYED =
  'It is only written while handling `initialize`, `logging/setLevel` or `resources/subscribe`, which `mcp-migrate proxy` replays on every replica, so the proxy rebuilds it.';
const NOT_REPLAYED = 'No handshake replay rebuilds it: move it to a session map in a shared store, or run `mcp-migrate proxy --affinity owner`.';

/** Variables of a per-session function written by the handlers it registers. */
function reportFactoryVariables(ctx: RuleContext, factory: FunctionLike): void {
  if (!factory.body || !ts.isBlock(factory.body)) return;
  const factoryName = functionName(factory) ?? 'the session factory';
  for (const statement of factory.body.statements) {
    if (!ts.isVariableStatement(statement)) continue;
    for (const decl of statement.declarationList.declarations) {
      if (!ts.isIdentifier(decl.name)) continue;
      const symbol = ctx.flow.symbolAt(decl.name);
      if (!symbol) continue;
      const init = decl.initializer ? skipOuter(decl.initializer) : undefined;
      const isLet = (statement.declarationList.flags & ts.NodeFlags.Let) !== 0;
      const isCollection = !!init && COLLECTION_INIT.test(init.getText());
      if (!isLet && !isCollection) continue;
      // Only writes from registered handlers outlive the factory call; a local written by a
      // promise executor or a stream callback is request-scoped, not session state.
      const writes = writesInClosures(ctx, factory, symbol).filter((w) => w.inHandler);
      if (writes.length === 0) continue;
      const replayed = writes.every((w) => w.replayed);
      const name = decl.name.text;
      ctx.report({
        node: decl.name,
        symbol: name,
        fix: replayed ? 'proxy' : 'manual',
        message:
          `\`${name}\` is created once per session by \`${factoryName}()\` and written by the handlers it registers, so it lives only in the replica that opened the session. ` +
          'Behind a round-robin load balancer the session\'s other requests run on replicas whose copy was never written. ' +
          (replayed ? REPLAYED : NOT_REPLAYED),
      });
    }
  }
}

const CHILD_PROCESS_MODULE = /^(node:)?child_process$/;
const SPAWNERS = new Set(['spawn', 'fork', 'exec', 'execFile']);

/** The module a declaration was imported or required from (`import { spawn } from 'node:child_process'`, `const cp = require('child_process')`). */
function moduleOf(decl: ts.Node | undefined): string | undefined {
  const spec = decl && ts.findAncestor(decl, (n) => ts.isImportDeclaration(n) || ts.isVariableDeclaration(n));
  if (spec && ts.isImportDeclaration(spec) && ts.isStringLiteral(spec.moduleSpecifier)) return spec.moduleSpecifier.text;
  const init = spec && ts.isVariableDeclaration(spec) && spec.initializer ? skipOuter(spec.initializer) : undefined;
  if (init && ts.isCallExpression(init) && ts.isIdentifier(init.expression) && init.expression.text === 'require' && init.arguments[0] && ts.isStringLiteral(init.arguments[0])) return init.arguments[0].text;
  return undefined;
}

/**
 * The value is an operating-system child process: typed `ChildProcess…` by `node:child_process`, or (without
 * Node's types) the result of its `spawn`/`fork`/`exec`/`execFile`, imported or required from that module.
 */
function isChildProcess(ctx: RuleContext, expr: ts.Expression): boolean {
  const type = ctx.checker.getTypeAtLocation(expr);
  const typeSymbol = type.getSymbol() ?? type.aliasSymbol;
  if (typeSymbol && /^ChildProcess/.test(typeSymbol.getName()) && (typeSymbol.declarations ?? []).some((d) => /[\\/]child_process\.d\.ts$/.test(d.getSourceFile().fileName))) return true;
  const call = skipOuter(expr);
  if (!ts.isCallExpression(call)) return false;
  const callee = skipOuter(call.expression);
  const name = ts.isPropertyAccessExpression(callee) ? callee.name : ts.isIdentifier(callee) ? callee : undefined;
  if (!name || !SPAWNERS.has(name.text)) return false;
  const holder = ts.isPropertyAccessExpression(callee) ? skipOuter(callee.expression) : name;
  if (!ts.isIdentifier(holder)) return false;
  const symbol = ctx.checker.getSymbolAtLocation(holder);
  const from = moduleOf(symbol?.declarations?.[0]);
  return !!from && CHILD_PROCESS_MODULE.test(from);
}

/**
 * A child process spawned by per-session code and kept for the session's later traffic (a closure the
 * session-opening code leaves behind uses it): the process, with whatever its own memory holds, is the
 * session's state and exists in the replica that opened the session only.
 */
function reportSessionProcesses(ctx: RuleContext, scope: SessionScope, decls: ts.VariableDeclaration[]): void {
  for (const decl of decls) {
    if (!ts.isIdentifier(decl.name) || !decl.initializer || !ctx.isAnalyzed(decl.getSourceFile())) continue;
    // Per-session code (the session-opening block of a request handler included).
    if (!scope.isPerSessionCode(decl)) continue;
    if (!isChildProcess(ctx, decl.initializer)) continue;
    const owner = enclosingFunction(decl);
    const symbol = ctx.flow.symbolAt(decl.name);
    if (!owner?.body || !symbol) continue;
    let kept = false;
    const visit = (n: ts.Node): void => {
      if (kept) return;
      if (ts.isIdentifier(n) && n !== decl.name && ctx.flow.symbolAt(n) === symbol && enclosingFunction(n) !== owner) kept = true;
      else ts.forEachChild(n, visit);
    };
    visit(owner.body);
    if (!kept) continue;
    const name = decl.name.text;
    ctx.report({
      node: decl.name,
      symbol: name,
      fix: 'manual',
      message:
        `\`${name}\` is a child process spawned once per session and used by the callbacks the session-opening code leaves behind, so the process (and all it holds in memory) runs only on the replica that opened the session. ` +
        "Behind a round-robin load balancer the session's other requests reach replicas with no such process, or with another session's. " +
        'Handshake replay cannot rebuild what the process accumulated: run `mcp-migrate proxy --affinity owner` so the replica that spawned it keeps serving the session.',
    });
  }
}

/** The function constructs an MCP server (`new McpServer(…)`, `new Server(…)`) itself. */
function buildsServer(ctx: RuleContext, fn: FunctionLike): boolean {
  let found = false;
  const visit = (n: ts.Node): void => {
    if (found || (n !== fn && isFunctionLike(n))) return;
    if (ts.isNewExpression(n) && ctx.flow.sdk.kindOfValue(n) === 'server') found = true;
    else ts.forEachChild(n, visit);
  };
  visit(fn);
  return found;
}

/** `x` is known falsy where `node` runs: inside the then-branch of `if (!x && …)`. */
function knownFalsyAt(ctx: RuleContext, node: ts.Node, symbol: ts.Symbol): boolean {
  for (let n: ts.Node = node; n.parent && !isFunctionLike(n); n = n.parent) {
    const parent = n.parent;
    if (!ts.isIfStatement(parent) || parent.thenStatement !== n) continue;
    const terms: ts.Expression[] = [];
    const split = (e: ts.Expression): void => {
      const x = skipOuter(e);
      if (ts.isBinaryExpression(x) && x.operatorToken.kind === ts.SyntaxKind.AmpersandAmpersandToken) {
        split(x.left);
        split(x.right);
      } else terms.push(x);
    };
    split(parent.expression);
    const negated = (t: ts.Expression): boolean => ts.isPrefixUnaryExpression(t) && t.operator === ts.SyntaxKind.ExclamationToken && ts.isIdentifier(skipOuter(t.operand)) && ctx.flow.symbolAt(skipOuter(t.operand)) === symbol;
    if (terms.some(negated)) return true;
  }
  return false;
}

/**
 * The parameter never holds a session id: only read (never assigned), optional, and every call of
 * the function passes nothing for it or a value known falsy there (`if (!sessionId && …)
 * openSession(req, res, sessionId)`, the header of a request that opens a session). A call through a
 * reference (a session opener the transport registry runs to restore a session) passes nothing, so it
 * is `undefined` there too.
 */
function carriesNoSessionId(ctx: RuleContext, factory: FunctionLike, param: ts.ParameterDeclaration, symbol: ts.Symbol): boolean {
  if (!param.questionToken && !(param.initializer && isUndefinedValue(param.initializer))) return false;
  const index = factory.parameters.indexOf(param);
  const sites = ctx.flow.callSitesOf(factory);
  for (const site of sites) {
    const arg = site.arguments?.[index];
    if (!arg) continue;
    const value = skipOuter(arg);
    const argSymbol = ts.isIdentifier(value) ? ctx.flow.symbolAt(value) : undefined;
    if (!isUndefinedValue(value) && !(argSymbol && knownFalsyAt(ctx, site, argSymbol))) return false;
  }
  let written = false;
  const visit = (n: ts.Node): void => {
    if (written) return;
    if (ts.isBinaryExpression(n) && n.operatorToken.kind >= ts.SyntaxKind.FirstAssignment && n.operatorToken.kind <= ts.SyntaxKind.LastAssignment && ts.isIdentifier(skipOuter(n.left)) && ctx.flow.symbolAt(skipOuter(n.left)) === symbol) written = true;
    else ts.forEachChild(n, visit);
  };
  if (factory.body) visit(factory.body);
  return !written && sites.length > 0;
}

/** A session id taken by a per-session server factory and captured by the handlers it registers: the server is bound to that session. */
function reportCapturedSessionIds(ctx: RuleContext, factory: FunctionLike): void {
  if (!buildsServer(ctx, factory)) return;
  for (const param of factory.parameters) {
    if (!ts.isIdentifier(param.name)) continue;
    const symbol = ctx.flow.symbolAt(param.name);
    if (!symbol || !ctx.flow.isSessionIdSymbol(symbol) || carriesNoSessionId(ctx, factory, param, symbol)) continue;
    let captured = false;
    const visit = (n: ts.Node): void => {
      if (captured) return;
      if (ts.isIdentifier(n) && n !== param.name && ctx.flow.symbolAt(n) === symbol && handlerBetween(n, factory)) captured = true;
      else ts.forEachChild(n, visit);
    };
    if (factory.body) visit(factory.body);
    if (!captured) continue;
    const name = param.name.text;
    const factoryName = functionName(factory) ?? 'this factory';
    ctx.report({
      node: param.name,
      symbol: name,
      fix: 'proxy',
      message:
        `\`${factoryName}()\` is called once per session with the session id \`${name}\`, and the handlers it registers capture it: the server it builds serves that one session, on the replica that opened it. ` +
        'Behind a round-robin load balancer the session\'s other requests reach replicas without that server. ' +
        'Handshake replay (`mcp-migrate proxy`, or the runtime registry of `mcp-migrate apply`) builds it again on the replica that serves the session; keep anything it looks up with the id in a shared store.',
    });
  }
}

function reportField(ctx: RuleContext, field: SessionField, site: ts.NewExpression): void {
  const cls = classNameOf(field.cls);
  const creator = enclosingFunction(site);
  const by = creator && functionName(creator) ? ` by \`${functionName(creator)}()\`` : '';
  ctx.report({
    node: field.node,
    symbol: `${cls}.${field.name}`,
    fix: field.replayed ? 'proxy' : 'manual',
    message:
      `\`${cls}.${field.name}\` belongs to a \`${cls}\` created once per session${by} (${where(site)}), and requests change it after the session opened, so it lives only in the replica that opened the session. ` +
      'Behind a round-robin load balancer the session\'s later requests reach replicas whose `' + cls + '` never saw the change (or that have no such object). ' +
      (field.replayed ? REPLAYED : 'No handshake replay rebuilds it: keep it in a shared store keyed by session id, or run `mcp-migrate proxy --affinity owner`.'),
  });
}

/**
 * Finds state whose lifetime is one session: variables of per-session code (a function that runs where
 * a sessionful transport is opened, directly or through calls) written by the handlers it registers, a
 * session id such code binds its handlers to, a child process it spawns and keeps, and the fields of objects created once per session that
 * requests change.
 */
export default createRule({
  meta: {
    id: 'no-per-session-closure-state',
    category: 'session-keyed-state',
    severity: 'warning',
    description: 'State created once per session: factory closures and the fields of per-session objects',
    fix: 'manual',
  },
  create: (ctx) => {
    const variables: ts.VariableDeclaration[] = [];
    return {
      [ts.SyntaxKind.VariableDeclaration](node: ts.Node) {
        variables.push(node as ts.VariableDeclaration);
      },
      end() {
        const scope = sessionScope(ctx.flow);
        reportSessionProcesses(ctx, scope, variables);
        for (const fn of scope.functions) {
          if (!ctx.isAnalyzed(fn.getSourceFile()) || !isFunctionLike(fn)) continue;
          reportFactoryVariables(ctx, fn);
          reportCapturedSessionIds(ctx, fn);
        }
        for (const [cls, sites] of scope.classes) {
          if (!ctx.isAnalyzed(cls.getSourceFile())) continue;
          for (const field of scope.sessionFields(cls)) {
            if (isInside(field.node, cls)) reportField(ctx, field, sites[0]!);
          }
        }
      },
    };
  },
});
