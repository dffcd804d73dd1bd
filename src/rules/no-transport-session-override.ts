import { ts } from 'ts-morph';
import { functionOf, skipOuter } from '../analyzer/ast.js';
import type { SdkKind } from '../analyzer/sdk-types.js';
import { createRule, type RuleContext } from './create-rule.js';

const TRANSPORT_KINDS = new Set<SdkKind>(['session-transport', 'transport']);

/** The SDK kind of a value: its type, or (for a variable the checker cannot type) its initializer's `new`. */
function valueKind(ctx: RuleContext, expr: ts.Expression): SdkKind | undefined {
  const e = skipOuter(expr);
  const kind = ctx.flow.sdk.kindOfValue(e);
  if (kind) return kind;
  if (ts.isIdentifier(e)) {
    const decl = ctx.flow.symbolAt(e)?.valueDeclaration;
    if (decl && ts.isVariableDeclaration(decl) && decl.initializer && skipOuter(decl.initializer) !== e) return ctx.flow.sdk.kindOfValue(decl.initializer);
  }
  return undefined;
}

/** A function value (a method put back or wrapped: `transport.start = originalStart`), not state. */
function isCallable(ctx: RuleContext, value: ts.Expression): boolean {
  try {
    const type = ctx.checker.getTypeAtLocation(value);
    return (type.isUnion() ? type.types : [type]).some((t) => t.getCallSignatures().length > 0);
  } catch {
    return false;
  }
}

/**
 * The transport whose state `target` is, and the node that names that state: the transport itself
 * (`transport.sessionId = …`), or a variable holding one of its members (`const inner = transport['_webStandardTransport']`).
 */
function transportState(ctx: RuleContext, target: ts.Expression): ts.Node | undefined {
  const owner = skipOuter(target);
  if (!ts.isIdentifier(owner)) return undefined;
  const decl = ctx.flow.symbolAt(owner)?.valueDeclaration;
  if (!decl || !ts.isVariableDeclaration(decl) || !decl.initializer) return undefined;
  const init = skipOuter(decl.initializer);
  if ((ts.isElementAccessExpression(init) || ts.isPropertyAccessExpression(init)) && TRANSPORT_KINDS.has(valueKind(ctx, init.expression)!)) return decl.name;
  return undefined;
}

/**
 * Finds code that writes a transport's session state by hand (`transport.sessionId = id`, an SDK
 * private such as `_initialized` reached through `transport['_webStandardTransport']`) to make a
 * transport serve a session it did not open: a hand-made restore of a session on another replica.
 */
export default createRule({
  meta: {
    id: 'no-transport-session-override',
    category: 'stateful-transport',
    severity: 'warning',
    description: "Writes into a transport's session state (its session id, SDK internals such as `_initialized`) to restore a session by hand",
    fix: 'manual',
  },
  create: (ctx) => ({
    [ts.SyntaxKind.BinaryExpression](node: ts.Node) {
      const assign = node as ts.BinaryExpression;
      if (assign.operatorToken.kind !== ts.SyntaxKind.EqualsToken || functionOf(assign.right) || isCallable(ctx, assign.right)) return;
      const left = skipOuter(assign.left);
      if (!ts.isPropertyAccessExpression(left) && !ts.isElementAccessExpression(left)) return;
      // A transport implementation setting its own state (`this.sessionId = …`, `a.peer = b`) is not a restore.
      if (skipOuter(left.expression).kind === ts.SyntaxKind.ThisKeyword) return;
      const cls = ts.findAncestor(assign, ts.isClassLike);
      if (cls?.name && TRANSPORT_KINDS.has(ctx.flow.sdk.kindOfSymbol(ctx.flow.symbolAt(cls.name))!)) return;
      const prop = ts.isPropertyAccessExpression(left) ? left.name.text : ctx.flow.constantString(left.argumentExpression);
      // Event hooks (`onclose`, `onmessage`, `onerror`) are the transport's public API.
      if (!prop || /^on[a-z]/.test(prop)) return;
      const direct = TRANSPORT_KINDS.has(valueKind(ctx, left.expression)!);
      const anchor = direct ? assign : transportState(ctx, left.expression);
      if (!anchor) return;
      ctx.report({
        node: anchor,
        symbol: prop,
        message:
          `This code sets the transport's \`${prop}\` by hand, so that a transport created on this replica serves a session that was opened elsewhere (or never initialized here). ` +
          'Behind a round-robin load balancer that restored transport has none of the session\'s negotiated state (client capabilities, log level, subscriptions, pending server requests), and the SDK\'s internals it writes can change in any release. ' +
          'Restore sessions with a handshake replay instead: `mcp-migrate apply --store redis` (the runtime registry re-creates the transport with the stored `initialize`) or `mcp-migrate proxy`; rewrite this restore by hand.',
      });
    },
  }),
});
