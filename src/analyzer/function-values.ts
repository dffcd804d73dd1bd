/**
 * Which of the program's functions a function-valued expression may hold: the data flow of functions
 * through variables, parameters, destructured options, object-literal properties and factories.
 *
 * Real servers rarely pass a tool's logic to `registerTool` as a literal. They build the handler with a
 * factory (`const handler = createToolHandler({ logic: tool.logic }); server.registerTool(name, cfg, handler)`),
 * keep each tool's logic in an array of definition objects (`{ name, logic: withAuth(scopes, run) }`), and
 * call it through a parameter (`logic(input, ctx)`). Following these values lets the process-state walk
 * start at such handlers and reach the logic they call.
 *
 * Resolution, for an expression `e` (at most {@link MAX_DEPTH} steps, memoized per node):
 * - a function expression, arrow or declaration: itself;
 * - a variable: its initializer; a parameter: the arguments its function's call sites pass; a name
 *   destructured from a parameter (`({ logic }) => …`): that property of the object literals passed;
 * - `obj.prop` declared in an interface, type or class: the values object literals give `prop` where the
 *   checker's contextual type of the literal declares that same property (in untyped JavaScript, where
 *   `prop` resolves to nothing, every object literal's `prop`);
 * - a call: the functions its callees return (`withAuth(scopes, fn)` returning an arrow);
 * - `a ?? b`, `a || b`, `c ? a : b`: both sides.
 */
import { ts } from 'ts-morph';
import { functionOf, isFunctionLike, propertyNameText, returnedExpressions, skipOuter, type FunctionLike } from './ast.js';

const MAX_DEPTH = 8;

export interface FunctionValueSources {
  checker: ts.TypeChecker;
  symbolAt(node: ts.Node): ts.Symbol | undefined;
  /** The functions a call invokes (the checker's callees). */
  callees(call: ts.CallExpression): FunctionLike[];
  /** The calls of `fn` known so far (by name, and those the caller resolved itself). */
  callSites(fn: FunctionLike): ReadonlyArray<ts.CallExpression | ts.NewExpression>;
  isProgramCode(node: ts.Node): boolean;
}

export class FunctionValues {
  /** Object-literal properties by name (`logic: …`), recorded while the engine visits every node. */
  private readonly literalProperties = new Map<string, ts.PropertyAssignment[]>();
  private readonly memo = new Map<ts.Node, FunctionLike[]>();

  constructor(private readonly src: FunctionValueSources) {}

  /** Called for every `PropertyAssignment` of the analyzed program; keeps those whose value may be a function. */
  record(prop: ts.PropertyAssignment): void {
    const value = skipOuter(prop.initializer);
    if (!ts.isCallExpression(value) && !ts.isIdentifier(value) && !ts.isPropertyAccessExpression(value) && !functionOf(value)) return;
    const name = propertyNameText(prop.name);
    if (!name) return;
    const list = this.literalProperties.get(name);
    if (list) list.push(prop);
    else this.literalProperties.set(name, [prop]);
  }

  /** The program's functions `expr` may evaluate to (empty when unknown). */
  of(expr: ts.Expression, depth = 0): FunctionLike[] {
    const e = skipOuter(expr);
    const cached = this.memo.get(e);
    if (cached) return cached;
    if (depth > MAX_DEPTH) return [];
    this.memo.set(e, []); // cycle guard
    const out = [...new Set(this.compute(e, depth))].filter((fn) => this.src.isProgramCode(fn));
    this.memo.set(e, out);
    return out;
  }

  private compute(e: ts.Expression, depth: number): FunctionLike[] {
    const fn = functionOf(e);
    if (fn) return [fn];
    if (ts.isConditionalExpression(e)) return [...this.of(e.whenTrue, depth + 1), ...this.of(e.whenFalse, depth + 1)];
    if (ts.isBinaryExpression(e) && (e.operatorToken.kind === ts.SyntaxKind.QuestionQuestionToken || e.operatorToken.kind === ts.SyntaxKind.BarBarToken)) {
      return [...this.of(e.left, depth + 1), ...this.of(e.right, depth + 1)];
    }
    if (ts.isCallExpression(e)) return this.calleesOf(e, depth).flatMap((c) => returnedExpressions(c).flatMap((r) => this.of(r, depth + 1)));
    if (ts.isIdentifier(e)) return this.ofSymbol(this.src.symbolAt(e), depth);
    if (ts.isPropertyAccessExpression(e)) return this.ofProperty(e, depth);
    return [];
  }

  /** The program's functions a call runs: the checker's callees, an immediately invoked function, or the functions its callee holds. */
  calleesOf(call: ts.CallExpression, depth = 0): FunctionLike[] {
    const own = this.src.callees(call).filter((c) => this.src.isProgramCode(c));
    if (own.length > 0) return own;
    const callee = skipOuter(call.expression);
    const literal = functionOf(callee);
    if (literal) return this.src.isProgramCode(literal) ? [literal] : [];
    return this.of(callee, depth + 1);
  }

  private ofSymbol(symbol: ts.Symbol | undefined, depth: number): FunctionLike[] {
    const out: FunctionLike[] = [];
    for (const decl of symbol?.declarations ?? []) {
      if (isFunctionLike(decl)) out.push(decl);
      else if (ts.isVariableDeclaration(decl) && decl.initializer) out.push(...this.of(decl.initializer, depth + 1));
      else if (ts.isParameter(decl)) out.push(...this.passedFor(decl, undefined, depth));
      else if (ts.isBindingElement(decl) && ts.isObjectBindingPattern(decl.parent) && ts.isParameter(decl.parent.parent)) {
        const key = propertyNameText(decl.propertyName ?? decl.name);
        if (key) out.push(...this.passedFor(decl.parent.parent, key, depth));
      } else if ((ts.isPropertyAssignment(decl) || ts.isPropertyDeclaration(decl)) && decl.initializer) out.push(...this.of(decl.initializer, depth + 1));
    }
    return out;
  }

  /** What the call sites of a parameter's function pass for it (or for its property `key`). */
  private passedFor(param: ts.ParameterDeclaration, key: string | undefined, depth: number): FunctionLike[] {
    const owner = param.parent;
    if (!isFunctionLike(owner)) return [];
    const index = owner.parameters.indexOf(param);
    const out: FunctionLike[] = [];
    for (const site of this.src.callSites(owner)) {
      const arg = site.arguments?.[index];
      if (!arg) continue;
      if (key === undefined) {
        out.push(...this.of(arg, depth + 1));
        continue;
      }
      const literal = skipOuter(arg);
      if (!ts.isObjectLiteralExpression(literal)) continue;
      for (const p of literal.properties) {
        if (ts.isPropertyAssignment(p) && propertyNameText(p.name) === key) out.push(...this.of(p.initializer, depth + 1));
        else if (ts.isShorthandPropertyAssignment(p) && p.name.text === key) out.push(...this.of(p.name, depth + 1));
      }
    }
    return out;
  }

  /**
   * `tool.logic` where `logic` is declared by an interface, a type or a class: every object literal of the
   * program whose contextual type declares that same property gives it a value.
   */
  private ofProperty(e: ts.PropertyAccessExpression, depth: number): FunctionLike[] {
    const symbol = this.src.symbolAt(e.name);
    const decls = symbol?.declarations ?? [];
    const direct = this.ofSymbol(symbol, depth);
    // Untyped JavaScript (`tool.logic` on a parameter with no type): the property's name is all there is.
    const untyped = decls.length === 0;
    if (!untyped && !decls.some((d) => ts.isPropertySignature(d) || (ts.isPropertyDeclaration(d) && !d.initializer))) return direct;
    const out = [...direct];
    for (const prop of this.literalProperties.get(e.name.text) ?? []) {
      if (untyped || this.declaresSame(prop, decls)) out.push(...this.of(prop.initializer, depth + 1));
    }
    return out;
  }

  private declaresSame(prop: ts.PropertyAssignment, decls: readonly ts.Declaration[]): boolean {
    try {
      const literal = prop.parent;
      const contextual = this.src.checker.getContextualType(literal);
      const name = propertyNameText(prop.name);
      const own = contextual && name ? contextual.getProperty(name) : undefined;
      return !!own?.declarations?.some((d) => decls.includes(d));
    } catch {
      return false;
    }
  }
}
