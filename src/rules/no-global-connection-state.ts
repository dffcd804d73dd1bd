import { ts } from 'ts-morph';
import { enclosingHandler, isInside, isModuleLevel } from '../analyzer/handlers.js';
import { skipOuter } from '../analyzer/session-flow.js';
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
  create: (ctx) => ({
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
      if (!handler) return;
      const plain = symbolName.split('.').pop()!;
      if (isLazyInit(assign, ts.isIdentifier(target) ? plain : target.getText()) || isCounterUpdate(assign, target.getText())) return;
      ctx.report({
        node: declNode,
        symbol: symbolName,
        message:
          `\`${symbolName}\` is one value for the whole process, yet it is written inside a \`${handler.registrar}\` handler, so it silently acts as connection state: every session overwrites the others' value and reads whichever session wrote last. ` +
          'Behind a round-robin load balancer each replica also holds its own copy, so a session reads a value another session (or nothing) wrote. ' +
          'Key it by session id in a shared store (`mcp-migrate/runtime` session maps), pass it explicitly in tool arguments, or derive it from the request; the codemods cannot decide which, so this needs a manual change.',
      });
    },
  }),
});
