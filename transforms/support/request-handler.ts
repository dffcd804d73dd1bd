/**
 * What apply knows of a request handler (a function whose request and response reach a transport's
 * `handleRequest(req, res, …)`): the names it gives them, what it returns once it answered, and
 * whether a per-request helper gets the same values on every call (so code made inside it can be
 * registered once per call).
 */
import { Node, SyntaxKind } from 'ts-morph';
import type { HandlerFn } from './opening-code.js';

/**
 * The request and response a handler passes to `<transport>.handleRequest(req, res, …)`, where both
 * are its own parameters, or properties destructured from them (`({ req, res, …options }) => …`).
 */
export function requestNames(fn: HandlerFn): [string, string] | undefined {
  const own = new Set(
    fn.getParameters().flatMap((p) => {
      const n = p.getNameNode();
      return Node.isIdentifier(n) ? [n.getText()] : n.getDescendantsOfKind(SyntaxKind.BindingElement).map((b) => b.getName());
    }),
  );
  for (const c of fn.getDescendantsOfKind(SyntaxKind.CallExpression)) {
    const callee = c.getExpression();
    const [a, b] = c.getArguments().map((x) => x.getText());
    if (Node.isPropertyAccessExpression(callee) && callee.getName() === 'handleRequest' && a && b && own.has(a) && own.has(b)) return [a, b];
  }
  const [a, b] = fn.getParameters().map((p) => p.getName());
  return a && b && Node.isIdentifier(fn.getParameters()[0]!.getNameNode()) ? [a, b] : undefined;
}

/** A function whose first two parameters reach a transport's `handleRequest(req, res, …)`: a request handler. */
export function handlesRequests(fn: HandlerFn): boolean {
  const names = requestNames(fn);
  if (!names) return false;
  return fn.getDescendantsOfKind(SyntaxKind.CallExpression).some((c) => {
    const callee = c.getExpression();
    const args = c.getArguments().map((x) => x.getText());
    return Node.isPropertyAccessExpression(callee) && callee.getName() === 'handleRequest' && args[0] === names[0] && args[1] === names[1];
  });
}

/**
 * What the handler returns once the request has been answered: the value of the `return` right after
 * a `<transport>.handleRequest(…)` statement (`' true'` for a handler that reports it handled the
 * request), `''` for none. The guard returns the same after the registry answered.
 */
export function answeredValue(handler: HandlerFn): string {
  for (const r of handler.getDescendantsOfKind(SyntaxKind.ReturnStatement)) {
    if (r.getFirstAncestor((a) => Node.isFunctionLikeDeclaration(a) || Node.isArrowFunction(a)) !== handler) continue;
    const before = r.getPreviousSibling();
    if (before && /\.handleRequest\(/.test(before.getText())) return r.getExpression() ? ` ${r.getExpression()!.getText()}` : '';
  }
  return '';
}

/**
 * Why an opener made inside the handler would not see the same values on every call (`undefined`
 * when it does): each call of the handler in this file passes arguments (object literals' properties
 * other than the request and response) that are literals or variables never assigned after their
 * declaration; a handler called from elsewhere, or passed on as a value, cannot be checked.
 */
export function callerVaries(handler: HandlerFn): string | undefined {
  const nameNode = Node.isFunctionDeclaration(handler) ? handler.getNameNode() : handler.getParentIfKind(SyntaxKind.VariableDeclaration)?.getNameNode();
  const why = (what: string): string => `the session-opening code reads what the handler's caller passes in, and apply cannot tell that every call passes the same values (${what}): extract it into a function registered once with \`registry.opener(fn)\` by hand (docs/apply.md)`;
  if (!nameNode || !Node.isIdentifier(nameNode)) return why('the handler is not a named function');
  const request = new Set(requestNames(handler) ?? []);
  for (const ref of nameNode.findReferencesAsNodes()) {
    if (ref === nameNode) continue;
    const call = ref.getParent();
    if (!call || !Node.isCallExpression(call) || call.getExpression() !== ref) return why(`\`${ref.getText()}\` is used other than called`);
    for (const arg of call.getArguments()) {
      const values = Node.isObjectLiteralExpression(arg) ? arg.getProperties() : [arg];
      for (const v of values) {
        if (Node.isPropertyAssignment(v) && request.has(v.getName())) continue;
        if (Node.isShorthandPropertyAssignment(v) && request.has(v.getName())) continue;
        const e = Node.isPropertyAssignment(v) ? v.getInitializer() : v;
        if (!e || !fixedVariable(e)) return why(`\`${v.getText().slice(0, 60)}\``);
      }
    }
  }
  return undefined;
}

/** A literal, or a variable (parameter or declared) that nothing assigns after its declaration. */
function fixedVariable(e: Node): boolean {
  if (Node.isLiteralExpression(e) || e.getKind() === SyntaxKind.TrueKeyword || e.getKind() === SyntaxKind.FalseKeyword || e.getKind() === SyntaxKind.NullKeyword) return true;
  if (!Node.isIdentifier(e) && !Node.isShorthandPropertyAssignment(e)) return false;
  const d = (Node.isShorthandPropertyAssignment(e) ? e.getValueSymbol() : e.getSymbol())?.getDeclarations()[0];
  if (!d || !(Node.isVariableDeclaration(d) || Node.isParameterDeclaration(d) || Node.isBindingElement(d))) return false;
  const name = d.getNameNode();
  if (!Node.isIdentifier(name)) return false;
  return name.findReferencesAsNodes().every((r) => {
    const p = r.getParent();
    const assigned = p && Node.isBinaryExpression(p) && p.getLeft() === r && p.getOperatorToken().getKind() >= SyntaxKind.FirstAssignment && p.getOperatorToken().getKind() <= SyntaxKind.LastAssignment;
    const updated = p && (Node.isPrefixUnaryExpression(p) || Node.isPostfixUnaryExpression(p)) && [SyntaxKind.PlusPlusToken, SyntaxKind.MinusMinusToken].includes(p.getOperatorToken());
    return !assigned && !updated;
  });
}
