import { ts } from 'ts-morph';
import { enclosingHandler, isInside, isModuleLevel } from '../analyzer/handlers.js';
import { calleeName, enclosingFunction, functionName, skipOuter, type FunctionLike } from '../analyzer/session-flow.js';
import { createRule } from './create-rule.js';

/** `x = …` inside `if (!x) { … }`: lazy initialization of a shared resource, not connection state. */
function isLazyInit(assign: ts.BinaryExpression, name: string): boolean {
  for (let n: ts.Node | undefined = assign.parent; n && !ts.isSourceFile(n); n = n.parent) {
    if (ts.isIfStatement(n) && isInside(assign, n.thenStatement)) {
      const cond = n.expression.getText().replace(/\s+/g, '');
      if (cond === `!${name}` || cond === `${name}===undefined` || cond === `${name}===null` || cond === `${name}==null`) return true;
    }
  }
  return false;
}

/** `x = x + 1`, counters and accumulators: process metrics, not connection state. */
function isCounterUpdate(assign: ts.BinaryExpression, name: string): boolean {
  const right = skipOuter(assign.right);
  return ts.isBinaryExpression(right) && (right.left.getText() === name || right.right.getText() === name) &&
    [ts.SyntaxKind.PlusToken, ts.SyntaxKind.MinusToken].includes(right.operatorToken.kind);
}

const CLIENT_APIS = /\b(getClientCapabilities|getClientVersion|clientInfo|sessionId)\b|mcp-session-id/i;
const TRANSPORT_NEW = /^new\s+\w*Transport\b/;

/**
 * Does the assigned value come from the request or the client (a handler parameter, a local derived
 * from one, the client's capabilities or info, a session id, a transport)? Values fetched from elsewhere
 * (an upstream API, a clock) are process-wide caches, not connection state.
 */
function dependsOnRequest(ctx: { flow: { symbolAt(n: ts.Node): ts.Symbol | undefined } }, value: ts.Expression, handler: ts.Node, depth = 0): boolean {
  if (depth > 3) return false;
  const text = value.getText();
  if (CLIENT_APIS.test(text) || TRANSPORT_NEW.test(skipOuter(value).getText())) return true;
  let found = false;
  const visit = (n: ts.Node): void => {
    if (found) return;
    if (ts.isIdentifier(n) && !(ts.isPropertyAccessExpression(n.parent) && n.parent.name === n)) {
      const decl = ctx.flow.symbolAt(n)?.valueDeclaration;
      if (decl && isInside(decl, handler)) {
        let param: ts.Node | undefined = decl;
        while (param && ts.isBindingElement(param)) param = param.parent.parent;
        if (param && ts.isParameter(param)) found = true;
        else if (ts.isVariableDeclaration(decl) && decl.initializer && dependsOnRequest(ctx, decl.initializer, handler, depth + 1)) found = true;
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(value);
  return found;
}

/**
 * Finds module-level, static or singleton mutable state written inside request, tool, resource or
 * prompt handlers: one value shared by every session of the process, overwritten by whichever
 * session ran last ("the first session wins").
 */
export default createRule({
  meta: {
    id: 'no-global-connection-state',
    category: 'global-connection-state',
    severity: 'warning',
    description: 'Module-level, static or singleton state written by request handlers, silently acting as connection state',
    fix: 'manual',
  },
  create: (ctx) => {
    const report = (declNode: ts.Node, symbolName: string, registrar: string): void =>
      ctx.report({
        node: declNode,
        symbol: symbolName,
        message:
          `\`${symbolName}\` is one value for the whole process, yet it is written inside a \`${registrar}\` handler, so it silently acts as connection state: every session overwrites the others' value and reads whichever session wrote last. ` +
          'Behind a round-robin load balancer each replica also holds its own copy, so a session reads a value another session (or nothing) wrote. ' +
          'Key it by session id in a shared store (`@mcp-migrate/runtime` session maps), pass it explicitly in tool arguments, or derive it from the request; the codemods cannot decide which, so this needs a manual change.',
      });
    /** Writes outside any handler, in a named helper that a handler may call (decided in `end`). */
    const deferred: Array<{ assign: ts.BinaryExpression; declNode: ts.Node; symbolName: string; helper: FunctionLike }> = [];
    /** Calls made inside handlers, by callee name. */
    const handlerCalls = new Map<string, Array<{ call: ts.CallExpression; registrar: string }>>();
    const skip = (assign: ts.BinaryExpression, symbolName: string): boolean => {
      const target = skipOuter(assign.left);
      const plain = symbolName.split('.').pop()!;
      return isLazyInit(assign, ts.isIdentifier(target) ? plain : target.getText()) || isCounterUpdate(assign, target.getText());
    };
    return {
      [ts.SyntaxKind.CallExpression](node: ts.Node) {
        const call = node as ts.CallExpression;
        const name = calleeName(call);
        if (!name) return;
        const handler = enclosingHandler(call);
        if (!handler) return;
        const list = handlerCalls.get(name) ?? [];
        list.push({ call, registrar: handler.registrar });
        handlerCalls.set(name, list);
      },
      [ts.SyntaxKind.BinaryExpression](node: ts.Node) {
        const assign = node as ts.BinaryExpression;
        if (assign.operatorToken.kind !== ts.SyntaxKind.EqualsToken) return;
        const target = skipOuter(assign.left);
        let declNode: ts.Node | undefined;
        let symbolName: string | undefined;
        if (ts.isIdentifier(target)) {
          const decl = ctx.flow.symbolAt(target)?.valueDeclaration;
          if (!decl || !ts.isVariableDeclaration(decl) || !isModuleLevel(decl)) return;
          declNode = decl.name;
          symbolName = target.text;
        } else if (ts.isPropertyAccessExpression(target)) {
          const decl = ctx.flow.symbolAt(target.name)?.valueDeclaration;
          const owner = skipOuter(target.expression);
          if (decl && ts.isPropertyDeclaration(decl) && decl.modifiers?.some((m) => m.kind === ts.SyntaxKind.StaticKeyword)) {
            declNode = decl.name;
            symbolName = `${decl.parent && ts.isClassLike(decl.parent) && decl.parent.name ? decl.parent.name.text + '.' : ''}${target.name.text}`;
          } else if (ts.isIdentifier(owner)) {
            const ownerDecl = ctx.flow.symbolAt(owner)?.valueDeclaration;
            if (ownerDecl && ts.isVariableDeclaration(ownerDecl) && isModuleLevel(ownerDecl) && ownerDecl.initializer && ts.isObjectLiteralExpression(skipOuter(ownerDecl.initializer))) {
              declNode = ownerDecl.name;
              symbolName = `${owner.text}.${target.name.text}`;
            }
          }
        }
        if (!declNode || !symbolName) return;
        const handler = enclosingHandler(assign);
        if (!handler) {
          const helper = enclosingFunction(assign);
          if (helper) deferred.push({ assign, declNode, symbolName, helper });
          return;
        }
        if (skip(assign, symbolName) || !dependsOnRequest(ctx, assign.right, handler.fn)) return;
        report(declNode, symbolName, handler.registrar);
      },
      end() {
        // One level: a module variable written by a helper that a handler calls with request data.
        for (const { assign, declNode, symbolName, helper } of deferred) {
          const name = functionName(helper);
          const site = name && handlerCalls.get(name)?.find(({ call }) => ctx.flow.callees(call).includes(helper));
          if (!site || skip(assign, symbolName) || !dependsOnRequest(ctx, assign.right, helper)) continue;
          report(declNode, symbolName, site.registrar);
        }
      },
    };
  },
});
