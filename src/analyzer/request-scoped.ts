/**
 * Must-write analysis: a module-level variable that the handler code writing it assigns on every path
 * before anything can read it (`setCurrentCallIsRemote(isRemote)` at the top of the `tools/call`
 * handler, then `if (remote) setClient(info) else setClient(null)`) holds a value of the request in
 * flight. No request reads what an earlier one left there, so it is not state that outlives a request.
 *
 * The check is syntactic over statements, and conservative: a statement before the write "may read" the
 * variable when it names it or calls a function of the program that names it or calls further program
 * functions; only a variable all of whose handler writes sit in such a write-first function qualifies.
 */
import { ts } from 'ts-morph';
import { enclosingFunction, isFunctionLike, skipOuter, type FunctionLike } from './ast.js';

const MAX_DEPTH = 3;

export interface RequestScopedDeps {
  symbolAt(node: ts.Node): ts.Symbol | undefined;
  /** The program's functions a call runs (empty for library calls). */
  callees(call: ts.CallExpression): FunctionLike[];
  /** The calls of a function that handler code reaches. */
  callSites(fn: FunctionLike): readonly ts.CallExpression[];
  /** Is the function a registered handler (it runs first for its request)? */
  isHandler(fn: FunctionLike): boolean;
}

export class RequestScoped {
  constructor(private readonly deps: RequestScopedDeps) {}

  /**
   * True when every write (`writes`: assignments to the variable `holder` reached from handlers) runs in
   * a function that writes the variable before any read on every path: a handler, or a function handlers
   * call that does more than set the variable; a setter (one statement) counts where its callers write first.
   */
  allWritesFirst(holder: ts.Symbol, writes: readonly ts.Node[]): boolean {
    if (writes.length === 0) return false;
    return writes.every((w) => {
      const fn = enclosingFunction(w);
      return !!fn && this.runsWriteFirst(fn, holder, 0);
    });
  }

  private runsWriteFirst(fn: FunctionLike, holder: ts.Symbol, depth: number): boolean {
    if (!fn.body || !ts.isBlock(fn.body) || !this.writesFirst(fn.body.statements, holder, 0)) return false;
    if (this.deps.isHandler(fn)) return true;
    const sites = this.deps.callSites(fn);
    if (sites.length === 0 || depth > MAX_DEPTH) return false;
    if (fn.body.statements.length > 1) return true;
    return sites.every((site) => {
      const caller = enclosingFunction(site);
      return !!caller && this.runsWriteFirst(caller, holder, depth + 1);
    });
  }

  /** Do these statements, run in order, write `holder` on every path before anything may read it? */
  private writesFirst(statements: readonly ts.Statement[], holder: ts.Symbol, depth: number): boolean {
    for (const s of statements) {
      if (this.writes(s, holder, depth)) return true;
      if (this.mayRead(s, holder, depth)) return false;
    }
    return false;
  }

  private writes(s: ts.Statement, holder: ts.Symbol, depth: number): boolean {
    if (ts.isBlock(s)) return this.writesFirst(s.statements, holder, depth);
    if (ts.isTryStatement(s)) return this.writesFirst(s.tryBlock.statements, holder, depth);
    if (ts.isIfStatement(s)) {
      return !!s.elseStatement && !this.mayRead(s.expression, holder, depth) &&
        this.writesFirst([s.thenStatement], holder, depth) && this.writesFirst([s.elseStatement], holder, depth);
    }
    if (!ts.isExpressionStatement(s)) return false;
    const e = skipOuter(s.expression);
    if (ts.isBinaryExpression(e) && e.operatorToken.kind === ts.SyntaxKind.EqualsToken) {
      const left = skipOuter(e.left);
      return ts.isIdentifier(left) && this.deps.symbolAt(left) === holder && !this.mayRead(e.right, holder, depth);
    }
    if (ts.isCallExpression(e) && depth < MAX_DEPTH && !e.arguments.some((a) => this.mayRead(a, holder, depth))) {
      const callees = this.deps.callees(e);
      return callees.length > 0 && callees.every((fn) => !!fn.body && ts.isBlock(fn.body) && this.writesFirst(fn.body.statements, holder, depth + 1));
    }
    return false;
  }

  /** Does the node name `holder`, or call a program function that names it or calls other program functions? */
  private mayRead(node: ts.Node, holder: ts.Symbol, depth: number): boolean {
    let found = false;
    const visit = (n: ts.Node): void => {
      if (found) return;
      if (ts.isIdentifier(n) && this.deps.symbolAt(n) === holder) found = true;
      else if (ts.isCallExpression(n) && this.deps.callees(n).some((fn) => depth >= MAX_DEPTH || !this.isLeafWithout(fn, holder))) found = true;
      else ts.forEachChild(n, visit);
    };
    visit(node);
    return found;
  }

  /** A function that neither names `holder` nor calls a function of the program. */
  private isLeafWithout(fn: FunctionLike, holder: ts.Symbol): boolean {
    let clean = true;
    const visit = (n: ts.Node): void => {
      if (!clean) return;
      if (ts.isIdentifier(n) && this.deps.symbolAt(n) === holder) clean = false;
      else if (ts.isCallExpression(n) && this.deps.callees(n).length > 0) clean = false;
      else if (!(n !== fn && isFunctionLike(n))) ts.forEachChild(n, visit);
    };
    if (fn.body) visit(fn.body);
    return clean;
  }
}
