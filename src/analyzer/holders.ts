/**
 * Where a value is kept: the variable, field or object-literal property a value initializes or is
 * assigned to, and the functions whose result it is. Rules use it to report the holders of state they
 * report elsewhere as covered findings (`Finding.coveredBy`): the `new` of an event-store class, the
 * handle of a reported timer, the object whose closure keeps a reported registry.
 */
import { ts } from 'ts-morph';
import { isFunctionLike, type FunctionLike } from './ast.js';

type Resolver = { symbolAt(n: ts.Node): ts.Symbol | undefined };

/** Climbs from `expr` through what may pass its value on unchanged: parentheses, casts, `await`, `a ?? expr`, `expr || b`, `c ? expr : d`. */
export function valueOutlet(expr: ts.Expression): ts.Expression {
  let n: ts.Expression = expr;
  for (;;) {
    const p = n.parent;
    if (!p) return n;
    const passes =
      ts.isParenthesizedExpression(p) ||
      ts.isAsExpression(p) ||
      ts.isSatisfiesExpression(p) ||
      ts.isNonNullExpression(p) ||
      ts.isAwaitExpression(p) ||
      (ts.isConditionalExpression(p) && p.condition !== n) ||
      (ts.isBinaryExpression(p) && (p.operatorToken.kind === ts.SyntaxKind.QuestionQuestionToken || p.operatorToken.kind === ts.SyntaxKind.BarBarToken));
    if (!passes) return n;
    n = p as ts.Expression;
  }
}

/**
 * The name node of the declaration that keeps the value of `expr`: the variable it initializes or is
 * assigned to (`let t; … t = expr` gives `t`'s declaration), the class field it initializes or is
 * assigned to through `this`, or the object-literal property whose value it is. `undefined` when the
 * value goes elsewhere (an argument, a return, a destructuring).
 */
export function holderOf(flow: Resolver, expr: ts.Expression): ts.Node | undefined {
  const n = valueOutlet(expr);
  const p = n.parent;
  if (!p) return undefined;
  if ((ts.isVariableDeclaration(p) || ts.isPropertyDeclaration(p)) && p.initializer === n) return ts.isIdentifier(p.name) || ts.isPrivateIdentifier(p.name) ? p.name : undefined;
  if (ts.isPropertyAssignment(p) && p.initializer === n) return p.name;
  if (ts.isBinaryExpression(p) && p.right === n && p.operatorToken.kind === ts.SyntaxKind.EqualsToken) {
    const left = p.left;
    const named = ts.isIdentifier(left) ? left : ts.isPropertyAccessExpression(left) && left.expression.kind === ts.SyntaxKind.ThisKeyword ? left.name : undefined;
    const decl = named && flow.symbolAt(named)?.valueDeclaration;
    if (decl && (ts.isVariableDeclaration(decl) || ts.isPropertyDeclaration(decl)) && (ts.isIdentifier(decl.name) || ts.isPrivateIdentifier(decl.name))) return decl.name;
  }
  return undefined;
}

/** Whether two nodes start on the same line of the same file (a holder written on its value's line is not reported apart). */
export function onSameLine(a: ts.Node, b: ts.Node): boolean {
  const sf = a.getSourceFile();
  return sf === b.getSourceFile() && sf.getLineAndCharacterOfPosition(a.getStart(sf)).line === sf.getLineAndCharacterOfPosition(b.getStart(sf)).line;
}

/** The function `expr` is (one of) the results of: `return a ?? expr`, an arrow's expression body. */
export function returnedFrom(expr: ts.Expression): FunctionLike | undefined {
  const n = valueOutlet(expr);
  const p = n.parent;
  if (p && ts.isReturnStatement(p)) {
    for (let f: ts.Node | undefined = p.parent; f; f = f.parent) if (isFunctionLike(f)) return f;
    return undefined;
  }
  return p && ts.isArrowFunction(p) && p.body === n ? p : undefined;
}
