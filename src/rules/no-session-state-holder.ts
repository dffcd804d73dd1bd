import { ts } from 'ts-morph';
import { enclosingFunction, functionName, isFunctionLike, isInside, isModuleLevel, propertyNameText, returnedExpressions, skipOuter, type FunctionLike, classNameOf } from '../analyzer/ast.js';
import { sessionScope } from '../analyzer/session-scope.js';
import { createRule, type RuleContext } from './create-rule.js';

const TIMERS = new Set(['setInterval', 'setTimeout']);

/** A place that keeps an object: a variable, or a class field (set at its declaration or by `this.f = …` in the constructor). */
interface Holder {
  /** The declaration's name node (where the finding goes). */
  node: ts.Identifier | ts.PrivateIdentifier;
  /** The expression whose value it keeps. */
  value: ts.Expression;
  /** For a field: its class (a holder field makes that class hold session state too). */
  cls?: ts.ClassLikeDeclaration;
  /** For a variable: its declaration (kept only when it outlives its function's call). */
  variable?: ts.VariableDeclaration;
}

/**
 * What makes the objects a holder keeps: a class, or a factory function that returns an object whose
 * functions close over the state it declares (`function createRegistry() { const map = new Map(); return { … } }`).
 */
type Maker = ts.ClassLikeDeclaration | FunctionLike;

/** The state a maker's objects keep: the field (or closure variable) that keeps it. */
interface StateClass {
  field: string;
  /** The holder field through which it holds state, when it holds it through another object. */
  via?: Maker;
}

/** The class of a class field's declaration name (a property declaration or constructor parameter property). */
function fieldClass(node: ts.Node): ts.ClassLikeDeclaration | undefined {
  const decl = node.parent;
  if (decl && ts.isPropertyDeclaration(decl) && ts.isClassLike(decl.parent)) return decl.parent;
  if (decl && ts.isPropertyAccessExpression(decl)) return ts.findAncestor(decl, ts.isClassLike);
  return undefined;
}

/** A function that returns an object literal (directly or through a variable it declares). */
function returnsObject(fn: FunctionLike): boolean {
  return returnedExpressions(fn).some((e) => {
    const x = skipOuter(e);
    if (ts.isObjectLiteralExpression(x)) return true;
    if (!ts.isIdentifier(x)) return false;
    let init: ts.Expression | undefined;
    const visit = (n: ts.Node): void => {
      if (!init && ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.name.text === x.text && n.initializer) init = n.initializer;
      else if (!init && !(n !== fn.body && isFunctionLike(n))) ts.forEachChild(n, visit);
    };
    if (fn.body) visit(fn.body);
    return !!init && ts.isObjectLiteralExpression(skipOuter(init));
  });
}

/** True when the class's (or factory's) own code starts a timer (a sweep or idle timeout over what it keeps). */
function startsTimer(cls: ts.Node): boolean {
  let found = false;
  const visit = (n: ts.Node): void => {
    if (found) return;
    if (ts.isCallExpression(n) && ts.isIdentifier(skipOuter(n.expression)) && TIMERS.has((skipOuter(n.expression) as ts.Identifier).text)) found = true;
    else ts.forEachChild(n, visit);
  };
  visit(cls);
  return found;
}

/**
 * Classes whose instances keep per-session state that no codemod moves: a session-keyed container
 * field (not a transport registry) that cannot be serialized or that the class's own timers sweep,
 * and the non-replayed fields of objects made once per session that requests change.
 */
function stateClasses(ctx: RuleContext): Map<Maker, StateClass> {
  const out = new Map<Maker, StateClass>();
  for (const c of ctx.containers()) {
    if (c.isRegistry) continue;
    const cls = fieldClass(c.node);
    if (cls && !out.has(cls) && (!c.serializable || startsTimer(cls))) out.set(cls, { field: c.name });
    // A closure variable of a factory that returns an object: the object's functions keep it.
    const decl = c.node.parent;
    const factory = decl && ts.isVariableDeclaration(decl) && !isModuleLevel(decl) ? enclosingFunction(decl) : undefined;
    if (factory && !out.has(factory) && (!c.serializable || startsTimer(factory)) && returnsObject(factory)) out.set(factory, { field: c.name });
  }
  const scope = sessionScope(ctx.flow);
  for (const cls of scope.classes.keys()) {
    const field = scope.sessionFields(cls).find((f) => !f.replayed);
    if (field && !out.has(cls)) out.set(cls, { field: field.name });
  }
  return out;
}

/** The values an expression may evaluate to, through parentheses, `await`, conditionals and `??`/`||`. */
function alternatives(e: ts.Expression): ts.Expression[] {
  const x = skipOuter(e);
  if (ts.isAwaitExpression(x)) return alternatives(x.expression);
  if (ts.isConditionalExpression(x)) return [...alternatives(x.whenTrue), ...alternatives(x.whenFalse)];
  if (ts.isBinaryExpression(x) && (x.operatorToken.kind === ts.SyntaxKind.QuestionQuestionToken || x.operatorToken.kind === ts.SyntaxKind.BarBarToken)) {
    return [...alternatives(x.left), ...alternatives(x.right)];
  }
  return [x];
}

/**
 * The makers of an object made or obtained here: the project class of `new C(…)`, the class of a static
 * method's result (`C.getInstance()`, typed `C`), and the project functions a call invokes (a factory
 * returning an object). Only static-method calls ask the checker for a type, which keeps it idle elsewhere.
 */
function makers(ctx: RuleContext, e: ts.Expression, callMakers: CallMakers): Maker[] {
  if (ts.isNewExpression(e)) {
    const callee = skipOuter(e.expression);
    const cls = ctx.flow.symbolAt(ts.isPropertyAccessExpression(callee) ? callee.name : callee)?.declarations?.find((d): d is ts.ClassLikeDeclaration => ts.isClassLike(d));
    return cls && isProjectClass(ctx, cls) ? [cls] : [];
  }
  if (!ts.isCallExpression(e) || !mayMake(e, callMakers)) return [];
  const out: Maker[] = [];
  for (const fn of ctx.flow.callees(e)) {
    if (!fn.body || !ctx.isAnalyzed(fn.getSourceFile())) continue;
    if (ts.isMethodDeclaration(fn) && fn.modifiers?.some((m) => m.kind === ts.SyntaxKind.StaticKeyword)) {
      const type = ctx.checker.getNonNullableType(ctx.checker.getTypeAtLocation(e));
      const cls = type.getSymbol()?.declarations?.find((d): d is ts.ClassLikeDeclaration => ts.isClassLike(d));
      if (cls && isProjectClass(ctx, cls)) out.push(cls);
    } else out.push(fn);
  }
  return out;
}

/**
 * What a call's result can be made by, as far as `makers` keeps it: a factory among the state classes
 * (`factories`), or a project class's static method, which is only ever called by its own name on a
 * property access (`C.getInstance()`): the names of those methods (`'any'` when one is computed).
 */
interface CallMakers {
  factories: boolean;
  statics: Set<string> | 'any';
}

function callMakers(ctx: RuleContext, classes: Map<Maker, StateClass>): CallMakers {
  let statics: Set<string> | 'any' = new Set<string>();
  for (const cls of ctx.flow.projectClasses()) {
    for (const m of cls.members) {
      if (!ts.isMethodDeclaration(m) || !m.body || !m.modifiers?.some((x) => x.kind === ts.SyntaxKind.StaticKeyword)) continue;
      const name = propertyNameText(m.name);
      if (name === undefined) statics = 'any';
      else if (statics !== 'any') statics.add(name);
    }
  }
  return { factories: [...classes.keys()].some((m) => !ts.isClassLike(m)), statics };
}

/**
 * Whether a call may yield a maker `makers` keeps, decided without the checker: resolving the callee of
 * every initializer's call (`result.items.map(…)`) type-checks most of the program's expressions.
 */
function mayMake(call: ts.CallExpression, { factories, statics }: CallMakers): boolean {
  if (factories || statics === 'any') return true;
  const callee = skipOuter(call.expression);
  return ts.isPropertyAccessExpression(callee) && statics.has(callee.name.text);
}

/** A class of the analyzed program, not one of the SDK's own (analyzing its repository: a server or transport keeps the SDK's bookkeeping, which replay covers). */
function isProjectClass(ctx: RuleContext, cls: ts.ClassLikeDeclaration): boolean {
  return ctx.isAnalyzed(cls.getSourceFile()) && !(cls.name && ctx.flow.sdk.sdkNameOf(ctx.flow.symbolAt(cls.name)));
}

/**
 * A variable outlives the call of its function when it is module-level or closures capture it (the
 * handlers and callbacks the function registers). A value it only passes on or returns is kept by the
 * callee or the caller, which is where that holder is found.
 */
function outlivesItsCall(ctx: RuleContext, decl: ts.VariableDeclaration, depth = 0): boolean {
  if (isModuleLevel(decl) || !ts.isIdentifier(decl.name)) return isModuleLevel(decl);
  const fn = enclosingFunction(decl);
  if (!fn || ctx.flow.isCapturedByClosure(decl.name, fn)) return true;
  // Put in an object literal that a variable keeps (`const deps = { registry }`, then closures capture `deps`).
  return depth < 2 && literalHolders(ctx, decl.name, fn).some((v) => outlivesItsCall(ctx, v, depth + 1));
}

/** Variables of `fn` initialized with an object literal that has `name` as a property value (`{ name }`, `{ key: name }`). */
function literalHolders(ctx: RuleContext, name: ts.Identifier, fn: FunctionLike): ts.VariableDeclaration[] {
  const symbol = ctx.flow.symbolAt(name);
  const out: ts.VariableDeclaration[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isVariableDeclaration(n) && n.initializer && ts.isObjectLiteralExpression(skipOuter(n.initializer))) {
      const literal = skipOuter(n.initializer) as ts.ObjectLiteralExpression;
      const has = literal.properties.some((p) =>
        ts.isShorthandPropertyAssignment(p)
          ? ctx.checker.getShorthandAssignmentValueSymbol(p) === symbol
          : ts.isPropertyAssignment(p) && ts.isIdentifier(skipOuter(p.initializer)) && ctx.flow.symbolAt(skipOuter(p.initializer)) === symbol,
      );
      if (has) out.push(n);
    }
    if (!isFunctionLike(n) || n === fn) ts.forEachChild(n, visit);
  };
  visit(fn);
  return out;
}

/** `this.f = value` in a constructor: the field `f`'s declaration name, when the class declares it. */
function constructorField(ctx: RuleContext, node: ts.BinaryExpression): Holder | undefined {
  const left = node.left;
  if (!ts.isPropertyAccessExpression(left) || left.expression.kind !== ts.SyntaxKind.ThisKeyword) return undefined;
  const ctor = enclosingFunction(node);
  if (!ctor || !ts.isConstructorDeclaration(ctor)) return undefined;
  const decl = ctx.flow.symbolAt(left.name)?.valueDeclaration;
  const name = decl && ts.isPropertyDeclaration(decl) ? decl.name : left.name;
  if (!ts.isIdentifier(name) && !ts.isPrivateIdentifier(name)) return undefined;
  return { node: name, value: node.right, cls: ctor.parent };
}

const describe = (maker: Maker): string =>
  ts.isClassLike(maker) ? classNameOf(maker) : `${functionName(maker) ?? 'factory'}()'s object`;

/**
 * Finds where the server keeps an object whose class holds per-session state that no codemod moves: the
 * variable (module-level, or captured by the handlers of the function that makes it) or the class field
 * (initialized, or set in the constructor) that holds the object made there (`new C(…)`, also behind a
 * condition, or a call typed `C`). A class whose field holds such an object holds that state too, so its
 * own holders are found the same way (a per-session `Context` whose constructor makes a `SessionManager`).
 */
export default createRule({
  meta: {
    id: 'no-session-state-holder',
    category: 'session-keyed-state',
    severity: 'warning',
    description: 'A variable or field that keeps an object holding per-session state',
    fix: 'manual',
  },
  create: (ctx) => {
    const holders: Holder[] = [];
    return {
      [ts.SyntaxKind.VariableDeclaration](node: ts.Node) {
        const decl = node as ts.VariableDeclaration;
        if (decl.initializer && ts.isIdentifier(decl.name)) holders.push({ node: decl.name, value: decl.initializer, variable: decl });
      },
      [ts.SyntaxKind.PropertyDeclaration](node: ts.Node) {
        const decl = node as ts.PropertyDeclaration;
        if (decl.initializer && (ts.isIdentifier(decl.name) || ts.isPrivateIdentifier(decl.name)) && ts.isClassLike(decl.parent)) {
          holders.push({ node: decl.name, value: decl.initializer, cls: decl.parent });
        }
      },
      [ts.SyntaxKind.BinaryExpression](node: ts.Node) {
        const b = node as ts.BinaryExpression;
        if (b.operatorToken.kind !== ts.SyntaxKind.EqualsToken) return;
        const h = constructorField(ctx, b);
        if (h) holders.push(h);
      },
      end() {
        const classes = stateClasses(ctx);
        const containers = new Set(ctx.containers().map((c) => c.node));
        const reported = new Set<ts.Node>();
        const made = new Map<Holder, Maker[]>();
        const byCall = callMakers(ctx, classes);
        for (const h of holders) {
          const cs = alternatives(h.value).flatMap((v) => makers(ctx, v, byCall)).filter((m) => (ts.isClassLike(m) || classes.has(m)) && !isInside(h.node, m));
          if (cs.length && !containers.has(h.node) && (!h.variable || outlivesItsCall(ctx, h.variable))) made.set(h, cs);
        }
        // A holder field makes its class hold state: repeat until no class is added (bounded by the holders).
        for (let changed = true, round = 0; changed && round <= made.size; round++) {
          changed = false;
          for (const [h, cs] of made) {
            if (reported.has(h.node)) continue;
            const held = cs.find((cls) => classes.has(cls));
            if (!held) continue;
            reported.add(h.node);
            if (h.cls && !classes.has(h.cls)) {
              classes.set(h.cls, { field: h.node.text, via: held });
              changed = true;
            }
            report(ctx, h, held, classes.get(held)!);
          }
        }
      },
    };
  },
});

function report(ctx: RuleContext, h: Holder, held: Maker, state: StateClass): void {
  const name = h.cls ? `${describe(h.cls)}.${h.node.text}` : h.node.text;
  const through = state.via ? `, through the \`${describe(state.via)}\` it keeps` : '';
  ctx.report({
    node: h.node,
    symbol: name,
    message:
      `\`${name}\` keeps a \`${describe(held)}\`, whose \`${state.field}\` holds per-session state in this process's memory${through}. ` +
      `Behind a round-robin load balancer each replica has its own \`${describe(held)}\`: a session's later requests reach replicas where that state is missing. ` +
      `Keep the state in a shared store keyed by session id (then this object keeps nothing of its own), or run \`mcp-migrate proxy --affinity owner\`.`,
  });
}
