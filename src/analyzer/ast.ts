/**
 * Syntax helpers shared by the analyzer's passes and the rules: function-like nodes, callee names,
 * expression unwrapping. Pure functions of the syntax tree; no type checker, no state.
 */
import { ts } from 'ts-morph';

export type FunctionLike =
  | ts.FunctionDeclaration
  | ts.FunctionExpression
  | ts.ArrowFunction
  | ts.MethodDeclaration
  | ts.ConstructorDeclaration
  | ts.GetAccessorDeclaration;

export function isFunctionLike(node: ts.Node): node is FunctionLike {
  return (
    ts.isFunctionDeclaration(node) ||
    ts.isFunctionExpression(node) ||
    ts.isArrowFunction(node) ||
    ts.isMethodDeclaration(node) ||
    ts.isConstructorDeclaration(node) ||
    ts.isGetAccessorDeclaration(node)
  );
}

/** Strips parentheses, casts, `!`, `satisfies` and `await`. */
export function skipOuter(node: ts.Expression): ts.Expression {
  let n = node;
  for (;;) {
    if (
      ts.isParenthesizedExpression(n) ||
      ts.isAsExpression(n) ||
      ts.isNonNullExpression(n) ||
      ts.isTypeAssertionExpression(n) ||
      ts.isSatisfiesExpression(n) ||
      ts.isAwaitExpression(n)
    ) {
      n = n.expression;
    } else return n;
  }
}

export function propertyNameText(name: ts.PropertyName | ts.BindingName | ts.MemberName): string | undefined {
  if (ts.isIdentifier(name) || ts.isStringLiteralLike(name) || ts.isNumericLiteral(name)) return name.text;
  if (ts.isPrivateIdentifier(name)) return name.text;
  return undefined;
}

export function calleeName(call: ts.CallExpression | ts.NewExpression): string | undefined {
  const callee = skipOuter(call.expression);
  if (ts.isIdentifier(callee)) return callee.text;
  if (ts.isPropertyAccessExpression(callee)) return callee.name.text;
  return undefined;
}

export function functionOf(node: ts.Expression): ts.ArrowFunction | ts.FunctionExpression | undefined {
  const e = skipOuter(node);
  return ts.isArrowFunction(e) || ts.isFunctionExpression(e) ? e : undefined;
}

/** The name a function is called by: its own (`function f`) or the variable it initializes (`const f = () => …`). */
export function functionName(fn: FunctionLike): string | undefined {
  if (fn.name && ts.isIdentifier(fn.name)) return fn.name.text;
  const parent = fn.parent;
  return parent && ts.isVariableDeclaration(parent) && ts.isIdentifier(parent.name) ? parent.name.text : undefined;
}

export function enclosingFunction(node: ts.Node): FunctionLike | undefined {
  let n: ts.Node | undefined = node.parent;
  while (n && !isFunctionLike(n)) n = n.parent;
  return n as FunctionLike | undefined;
}

export function isUndefinedLiteral(e: ts.Expression): boolean {
  return (
    (ts.isIdentifier(e) && e.text === 'undefined') ||
    e.kind === ts.SyntaxKind.NullKeyword ||
    ts.isVoidExpression(e)
  );
}

/** The expressions a function returns (expression bodies and `return x;` not inside nested functions). */
export function returnedExpressions(fn: FunctionLike): ts.Expression[] {
  if (!fn.body) return [];
  if (!ts.isBlock(fn.body)) return [fn.body];
  const out: ts.Expression[] = [];
  const visit = (node: ts.Node): void => {
    if (isFunctionLike(node) || ts.isClassLike(node)) return;
    if (ts.isReturnStatement(node) && node.expression) out.push(node.expression);
    ts.forEachChild(node, visit);
  };
  ts.forEachChild(fn.body, visit);
  return out;
}

/** True for a declaration at module top level (`let x` directly in the source file). */
export function isModuleLevel(decl: ts.Node): boolean {
  const statement = decl.parent?.parent;
  return !!statement && ts.isVariableStatement(statement) && ts.isSourceFile(statement.parent);
}

export function isInside(node: ts.Node, container: ts.Node): boolean {
  for (let n: ts.Node | undefined = node; n; n = n.parent) if (n === container) return true;
  return false;
}

/**
 * The name a class goes by: its own (`class C`), else that of the variable or property a class expression
 * is assigned to (`var C = class { … }`, the form bundlers emit), else `'class'`.
 */
export function classNameOf(cls: ts.ClassLikeDeclaration): string {
  if (cls.name) return cls.name.text;
  const p = cls.parent;
  if ((ts.isVariableDeclaration(p) || ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p)) && p.initializer === cls) return propertyNameText(p.name) ?? 'class';
  return 'class';
}


/**
 * The variable a lazy initialization assigns, when `value` is one: `x ??= value`, `x ||= value`,
 * `x = x ?? value`, or `x = value` in the branch of `if (!x)` / `if (x == null)` / `if (x === undefined)`.
 * Such a value is made once for whoever holds `x`, not once per call.
 */
export function lazyInitTarget(value: ts.Expression): ts.Identifier | undefined {
  let n: ts.Node = value;
  while (n.parent && (ts.isParenthesizedExpression(n.parent) || ts.isAsExpression(n.parent) || ts.isAwaitExpression(n.parent) || ts.isNonNullExpression(n.parent))) n = n.parent;
  const assign = n.parent;
  if (!assign || !ts.isBinaryExpression(assign) || assign.right !== n) return undefined;
  const op = assign.operatorToken.kind;
  if (op === ts.SyntaxKind.QuestionQuestionToken || op === ts.SyntaxKind.BarBarToken) {
    // `x = x ?? value`
    const outer = assign.parent;
    const same = !!outer && ts.isBinaryExpression(outer) && outer.right === assign && outer.operatorToken.kind === ts.SyntaxKind.EqualsToken && skipOuter(assign.left).getText() === skipOuter(outer.left).getText();
    const target = same ? skipOuter((outer as ts.BinaryExpression).left) : undefined;
    return target && ts.isIdentifier(target) ? target : undefined;
  }
  const target = skipOuter(assign.left);
  if (!ts.isIdentifier(target)) return undefined;
  if (op === ts.SyntaxKind.QuestionQuestionEqualsToken || op === ts.SyntaxKind.BarBarEqualsToken) return target;
  if (op !== ts.SyntaxKind.EqualsToken) return undefined;
  for (let a: ts.Node | undefined = assign.parent; a && !isFunctionLike(a); a = a.parent) {
    if (ts.isIfStatement(a) && isInside(assign, a.thenStatement) && testsUnset(a.expression, target.text)) return target;
  }
  return undefined;
}

/** `!x`, `x == null`, `x === null`, `x === undefined` (and `!x || …`). */
function testsUnset(cond: ts.Expression, name: string): boolean {
  const e = skipOuter(cond);
  if (ts.isPrefixUnaryExpression(e) && e.operator === ts.SyntaxKind.ExclamationToken) return skipOuter(e.operand).getText() === name;
  if (ts.isBinaryExpression(e)) {
    if (e.operatorToken.kind === ts.SyntaxKind.BarBarToken) return testsUnset(e.left, name) || testsUnset(e.right, name);
    const eq = [ts.SyntaxKind.EqualsEqualsToken, ts.SyntaxKind.EqualsEqualsEqualsToken].includes(e.operatorToken.kind);
    const unset = (x: ts.Expression): boolean => x.kind === ts.SyntaxKind.NullKeyword || isUndefinedLiteral(x);
    return eq && ((skipOuter(e.left).getText() === name && unset(e.right)) || (skipOuter(e.right).getText() === name && unset(e.left)));
  }
  return false;
}

/**
 * Adds to `found` every function name whose calls (`calls`: function name → names it calls) reach, by
 * name and transitively, a name already in `found`; a fixpoint over a syntactic call graph.
 */
export function addCallersByName(calls: ReadonlyMap<string, ReadonlySet<string>>, found: Set<string>): void {
  for (let changed = true; changed; ) {
    changed = false;
    for (const [name, called] of calls) {
      if (found.has(name)) continue;
      for (const c of called) {
        if (found.has(c)) {
          found.add(name);
          changed = true;
          break;
        }
      }
    }
  }
}
