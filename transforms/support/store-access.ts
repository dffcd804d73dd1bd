/**
 * What the store-backed container transforms (`session-keyed-map`, `shared-map`) need to know about a
 * container's uses: whether a value read from it (or written to it) is changed in place afterwards — a
 * store hands out copies, so such a change would be lost — and how to await one of its calls.
 */
import { Node, type CallExpression, type Identifier, type SourceFile } from 'ts-morph';
import type { TransformContext } from '../define-transform.js';

/** Methods that change an array, a Map, a Set or a Date in place. */
const MUTATORS = /^(push|pop|shift|unshift|splice|sort|reverse|add|set|delete|clear|fill|copyWithin|set[A-Z]\w*)$/;

/**
 * Whether the value `expr` evaluates to is changed in place where it stands: `expr.a = …`, `expr.a.b += …`,
 * `expr.list.push(…)`, `delete expr.a`, `expr.n++`, `Object.assign(expr, …)`.
 */
export function changedInPlace(expr: Node): boolean {
  let top: Node = expr;
  let accessed = false;
  for (;;) {
    const p = top.getParent();
    if (p && (Node.isPropertyAccessExpression(p) || Node.isElementAccessExpression(p)) && p.getExpression() === top) {
      const gp = p.getParent();
      if (Node.isPropertyAccessExpression(p) && gp && Node.isCallExpression(gp) && gp.getExpression() === p && MUTATORS.test(p.getName())) return true;
      top = p;
      accessed = true;
    } else if (p && (Node.isNonNullExpression(p) || Node.isParenthesizedExpression(p) || Node.isAsExpression(p))) top = p;
    else break;
  }
  const p = top.getParent();
  if (!p) return false;
  if (Node.isCallExpression(p) && p.getArguments()[0] === top && p.getExpression().getText() === 'Object.assign') return true;
  if (!accessed) return false;
  if (Node.isBinaryExpression(p) && p.getLeft() === top && /=$/.test(p.getOperatorToken().getText()) && !/^[=!]==?$/.test(p.getOperatorToken().getText())) return true;
  if ((Node.isPrefixUnaryExpression(p) || Node.isPostfixUnaryExpression(p)) && /\+\+|--/.test(p.getText())) return true;
  return Node.isDeleteExpression(p);
}

/** Whether the value `call` (a `get`) reads is changed in place: directly (`m.get(k).push(…)`) or through the variable it initializes. */
export function readValueChanged(call: CallExpression): boolean {
  if (changedInPlace(call)) return true;
  const p = call.getParent();
  const holder = p && Node.isAwaitExpression(p) ? p.getParent() : p;
  if (!holder || !Node.isVariableDeclaration(holder) || !Node.isIdentifier(holder.getNameNode())) return false;
  const name = holder.getNameNode() as Identifier;
  return name.findReferencesAsNodes().some((r) => r !== name && changedInPlace(r));
}

/** Methods plain data has (arrays, strings, numbers, Date, URL, every object): calling another one shows an object with behaviour. */
const PLAIN_METHODS = new Set(
  [Object.prototype, Array.prototype, String.prototype, Number.prototype, Boolean.prototype, Date.prototype, URL.prototype].flatMap((p) => Object.getOwnPropertyNames(p)),
);

/** The call (`entry.remove()`, `resolver(value)`) of a method plain data does not have, or of the value itself, on what `call` (a `get`) reads, if any: the value has behaviour. */
export function behaviourCalledOnRead(call: CallExpression): string | undefined {
  const called = (expr: Node): string | undefined => {
    let top: Node = expr;
    for (let p = top.getParent(); p && (Node.isNonNullExpression(p) || Node.isParenthesizedExpression(p) || Node.isAwaitExpression(p)); p = top.getParent()) top = p;
    const member = top.getParent();
    if (member && Node.isCallExpression(member) && member.getExpression() === top) return member.getText().slice(0, 60);
    const outer = member?.getParent();
    if (!member || !Node.isPropertyAccessExpression(member) || member.getExpression() !== top || !outer || !Node.isCallExpression(outer) || outer.getExpression() !== member) return undefined;
    return PLAIN_METHODS.has(member.getName()) ? undefined : outer.getText().slice(0, 60);
  };
  const direct = called(call);
  if (direct) return direct;
  const p = call.getParent();
  const holder = p && Node.isAwaitExpression(p) ? p.getParent() : p;
  if (!holder || !Node.isVariableDeclaration(holder) || !Node.isIdentifier(holder.getNameNode())) return undefined;
  const name = holder.getNameNode() as Identifier;
  for (const r of name.findReferencesAsNodes()) {
    const m = r !== name ? called(r) : undefined;
    if (m) return m;
  }
  return undefined;
}

/** Whether the variable passed as `call`'s value argument (`m.set(k, v)`) is changed in place after the call, where the container would not see it. */
export function writtenValueChangedAfter(call: CallExpression, valueIndex: number): boolean {
  const arg = call.getArguments()[valueIndex];
  if (!arg || !Node.isIdentifier(arg)) return false;
  return arg.findReferencesAsNodes().some((r) => r.getStart() > call.getEnd() && changedInPlace(r));
}

/** The line and a short text of a node, for a marker's reason. */
export function where(n: Node): string {
  return `line ${n.getStartLineNumber()}: \`${n.getText().replace(/\s+/g, ' ').slice(0, 60)}\``;
}

/** Puts `await` before `call` (in parentheses where it is the object of a property access or a call), unless it is awaited already. */
export function awaitCall(ctx: TransformContext, sf: SourceFile, call: CallExpression): void {
  const parent = call.getParent();
  if (parent && Node.isAwaitExpression(parent)) return;
  const needsParens =
    !!parent &&
    (Node.isPropertyAccessExpression(parent) || Node.isElementAccessExpression(parent) || (Node.isCallExpression(parent) && parent.getExpression() === call) || Node.isNonNullExpression(parent));
  ctx.replace(sf, call.getStart(), call.getEnd(), needsParens ? `(await ${call.getText()})` : `await ${call.getText()}`);
}
