/**
 * Per-handler must-write analysis: is a module-level variable only ever read by a request that wrote it
 * first? `currentCallIsRemote` set at the top of the `tools/call` handler (then the remote client set
 * in both branches of an `if`/`else`) and read by telemetry later in that call holds the request in
 * flight; a `logLevel` that `logging/setLevel` sets and tool handlers read carries from one request to
 * the next, even though the setLevel handler also "writes it first".
 *
 * The condition is per variable and per entry point: every registered handler whose code (followed
 * through the program's calls) may read the variable writes it on every path before that read. Then no
 * value one request wrote is read by another, and the variable is not state that outlives a request.
 *
 * The walk is an abstract interpretation over statements with one bit (written on every path so far):
 * branches join by AND, a loop body may run zero times, a `catch` starts from the state at the try
 * block's `throw` statements (in its code and in the program functions it calls that are followed),
 * `finally` from the join of every way out of the try and catch blocks. Exceptions a library call may
 * raise are not modelled (an error path, like a `TypeError` of a property read). Calls of program functions that may reach the variable
 * (by a syntactic name graph, like the write walk's) are followed with the caller's state; a function
 * literal (a callback) is judged on its own from "not written", since it may run after other requests.
 * Reads outside handlers (start-up code, timers) are not reads by another request. Interleaving of
 * concurrent async requests is not modelled: a request that awaits between its write and its read is
 * taken to read its own value.
 */
import { ts } from 'ts-morph';
import { addCallersByName, calleeName, functionName, isFunctionLike, skipOuter, type FunctionLike } from './ast.js';

const MAX_DEPTH = 8;

export interface RequestScopedDeps {
  symbolAt(node: ts.Node): ts.Symbol | undefined;
  /** The program's functions a call runs (empty for library calls). */
  callees(call: ts.CallExpression | ts.NewExpression): FunctionLike[];
  /** The analyzed program's functions (for the name graph). */
  functions: readonly FunctionLike[];
}

/** One walk's accumulators: the state on the current path (`null`: unreachable) and at the ways out. */
interface Walk {
  w: boolean | null;
  unsafe: boolean;
  /** AND of the state at each `return` (true when none). */
  exits: boolean;
  /** AND of the state at each point that may throw (true when none); `threw` tells whether there was one. */
  throws: boolean;
  threw: boolean;
  depth: number;
}

interface Summary {
  unsafe: boolean;
  /** Written on every way the function returns normally. */
  out: boolean;
  /** Written at every point where it may throw (true when none). */
  throws: boolean;
}

export class RequestScoped {
  private readonly readers: Set<string>;
  private readonly summaries = new Map<FunctionLike, Summary | 'busy'>();

  constructor(private readonly deps: RequestScopedDeps, private readonly holder: ts.Symbol, private readonly name: string) {
    this.readers = readerNames(deps.functions, name);
  }

  /** Does `handler`, entered with the variable not yet written, read it before writing it on some path? */
  readsBeforeWrite(handler: FunctionLike): boolean {
    return this.summary(handler).unsafe;
  }

  /**
   * Is every read of the variable inside a function that handler code reaches (through calls that may
   * reach it by name, followed in any state), or in module-level start-up code? A read in a function no
   * handler reaches (an exported `shouldLog` the walk never sees called) may be anyone's, so no; nor
   * when nothing in the program reads it at all (`lastCaller = extra.sessionId`, read elsewhere).
   */
  readsAllSeen(handlers: readonly FunctionLike[]): boolean {
    const reached = new Set<FunctionLike>();
    const queue = [...handlers];
    while (queue.length > 0) {
      const fn = queue.pop()!;
      if (reached.has(fn) || !fn.body) continue;
      reached.add(fn);
      if (!mentionsAny(fn.body, this.readers)) continue;
      const visit = (n: ts.Node): void => {
        if ((ts.isCallExpression(n) || ts.isNewExpression(n)) && this.readers.has(calleeName(n) ?? '')) queue.push(...this.deps.callees(n));
        else if (ts.isIdentifier(n) && this.readers.has(n.text) && !ts.isPropertyAccessExpression(n.parent)) queue.push(...this.functionsNamed(n));
        ts.forEachChild(n, visit);
      };
      visit(fn.body);
    }
    let reads = 0;
    for (const fn of this.deps.functions) {
      if (!fn.body || !this.readsDirectly(fn)) continue;
      let seen = false;
      for (let f: ts.Node | undefined = fn; f && !seen; f = f.parent) if (isFunctionLike(f) && reached.has(f)) seen = true;
      if (!seen) return false;
      reads++;
    }
    // A variable handler code writes and nothing in the program reads is read by code the analysis does not see.
    return reads > 0;
  }

  /** Does the function's own code (not nested functions) read the variable (name it other than as the target of `=`)? */
  private readsDirectly(fn: FunctionLike): boolean {
    if (!fn.body || !mentionsAny(fn.body, [this.name])) return false;
    let found = false;
    const visit = (n: ts.Node): void => {
      if (found || (n !== fn && isFunctionLike(n))) return;
      if (ts.isIdentifier(n) && n.text === this.name && (ts.isShorthandPropertyAssignment(n.parent) || this.deps.symbolAt(n) === this.holder)) {
        const p = n.parent;
        if (!(ts.isBinaryExpression(p) && p.left === n && p.operatorToken.kind === ts.SyntaxKind.EqualsToken)) found = true;
      }
      ts.forEachChild(n, visit);
    };
    if (fn.body) visit(fn.body);
    return found;
  }

  private summary(fn: FunctionLike): Summary {
    const memo = this.summaries.get(fn);
    if (memo === 'busy') return { unsafe: this.names(fn), out: false, throws: false }; // recursion: conservative
    if (memo) return memo;
    this.summaries.set(fn, 'busy');
    const walk: Walk = { w: false, unsafe: false, exits: true, throws: true, threw: false, depth: 0 };
    if (fn.body && ts.isBlock(fn.body)) this.stmt(fn.body, walk);
    else if (fn.body) {
      this.expr(fn.body, walk);
      this.exit(walk);
    }
    const out = walk.exits && (walk.w === null ? true : walk.w);
    const result: Summary = { unsafe: walk.unsafe, out, throws: walk.throws };
    this.summaries.set(fn, result);
    return result;
  }

  /** Does the function's text name the variable or call a function that may (by name)? */
  private names(fn: FunctionLike): boolean {
    const name = functionName(fn) ?? (ts.isMethodDeclaration(fn) && ts.isIdentifier(fn.name) ? fn.name.text : undefined);
    return name === undefined || this.readers.has(name);
  }

  private exit(walk: Walk): void {
    if (walk.w !== null) walk.exits &&= walk.w;
    walk.w = null;
  }

  private throwPoint(walk: Walk, state: boolean | null = walk.w): void {
    if (state === null) return;
    walk.throws &&= state;
    walk.threw = true;
  }

  private read(walk: Walk): void {
    if (walk.w === false) walk.unsafe = true;
  }

  // ---------------------------------------------------------------- statements

  private stmt(s: ts.Statement, walk: Walk): void {
    if (walk.w === null || walk.unsafe) return;
    if (walk.w === true) return; // written: nothing after can read an earlier request's value
    if (ts.isBlock(s)) for (const c of s.statements) this.stmt(c, walk);
    else if (ts.isVariableStatement(s)) {
      for (const d of s.declarationList.declarations) if (d.initializer) this.expr(d.initializer, walk);
    } else if (ts.isExpressionStatement(s)) this.expr(s.expression, walk);
    else if (ts.isReturnStatement(s)) {
      if (s.expression) this.expr(s.expression, walk);
      this.exit(walk);
    } else if (ts.isThrowStatement(s)) {
      this.expr(s.expression, walk);
      this.throwPoint(walk);
      walk.w = null;
    } else if (ts.isIfStatement(s)) {
      this.expr(s.expression, walk);
      const before = walk.w;
      this.stmt(s.thenStatement, walk);
      const then = walk.w;
      walk.w = before;
      if (s.elseStatement) this.stmt(s.elseStatement, walk);
      walk.w = join(then, walk.w);
    } else if (ts.isTryStatement(s)) this.tryStmt(s, walk);
    else if (ts.isForStatement(s) || ts.isForOfStatement(s) || ts.isForInStatement(s) || ts.isWhileStatement(s)) {
      if (ts.isForStatement(s)) {
        if (s.initializer) this.node(s.initializer, walk);
        if (s.condition) this.expr(s.condition, walk);
      } else this.expr(s.expression, walk);
      const before = walk.w;
      this.stmt(s.statement, walk);
      walk.w = before; // the body may not run
    } else if (ts.isDoStatement(s)) {
      const before = walk.w;
      this.stmt(s.statement, walk);
      walk.w = before; // a `continue`/`break` may leave the body early
      this.expr(s.expression, walk);
    } else if (ts.isSwitchStatement(s)) {
      this.expr(s.expression, walk);
      const before = walk.w;
      for (const clause of s.caseBlock.clauses) {
        walk.w = before;
        if (ts.isCaseClause(clause)) this.expr(clause.expression, walk);
        for (const c of clause.statements) this.stmt(c, walk);
      }
      walk.w = before;
    } else if (ts.isLabeledStatement(s)) this.stmt(s.statement, walk);
    else if (ts.isBreakStatement(s) || ts.isContinueStatement(s)) walk.w = null;
    else if (ts.isFunctionDeclaration(s) || ts.isClassDeclaration(s) || ts.isInterfaceDeclaration(s) || ts.isTypeAliasDeclaration(s) || ts.isEmptyStatement(s)) {
      // Declarations run nothing; a declared function is judged where it is called or passed.
    } else this.node(s, walk);
  }

  /** `catch` starts from the state at the try block's throw points; `finally` from every way out of both. */
  private tryStmt(s: ts.TryStatement, walk: Walk): void {
    const outer = { throws: walk.throws, threw: walk.threw, exits: walk.exits };
    walk.throws = true;
    walk.threw = false;
    walk.exits = true;
    this.stmt(s.tryBlock, walk);
    const afterTry = walk.w;
    let pending = { throws: walk.throws, threw: walk.threw };
    let afterCatch: boolean | null = null;
    if (s.catchClause) {
      walk.w = pending.threw ? pending.throws : null;
      walk.throws = true;
      walk.threw = false;
      this.stmt(s.catchClause.block, walk);
      afterCatch = walk.w;
      pending = { throws: walk.throws, threw: walk.threw };
    }
    const normal = s.catchClause ? join(afterTry, afterCatch) : afterTry;
    const inner = walk.exits;
    walk.exits = outer.exits;
    if (s.finallyBlock) {
      // Every way into `finally`: normal completion, a return, a throw that the catch did not handle.
      let state: boolean | null = normal;
      if (!inner) state = false;
      if (pending.threw) state = join(state, pending.throws);
      walk.w = state ?? true;
      walk.throws = outer.throws;
      walk.threw = outer.threw;
      this.stmt(s.finallyBlock, walk);
      const fin = walk.w;
      if (pending.threw) this.throwPoint(walk, pending.throws || fin === true);
      walk.exits &&= inner || fin === true;
      walk.w = normal === null ? null : normal || fin === true;
      return;
    }
    walk.exits &&= inner;
    walk.throws = outer.throws && (!pending.threw || pending.throws);
    walk.threw = outer.threw || pending.threw;
    walk.w = normal;
  }

  // ---------------------------------------------------------------- expressions

  private expr(e: ts.Expression, walk: Walk): void {
    if (walk.w !== false || walk.unsafe) return;
    if (ts.isIdentifier(e)) {
      // `{ holder }` names the property's symbol at that node: its text decides (conservatively).
      if (e.text === this.name && (ts.isShorthandPropertyAssignment(e.parent) || this.deps.symbolAt(e) === this.holder)) this.read(walk);
      return;
    }
    if (isFunctionLike(e)) return this.detached(e, walk);
    if (ts.isClassLike(e)) return;
    if (ts.isBinaryExpression(e)) return this.binary(e, walk);
    if (ts.isConditionalExpression(e)) {
      this.expr(e.condition, walk);
      const before = walk.w;
      this.expr(e.whenTrue, walk);
      const a = walk.w;
      walk.w = before;
      this.expr(e.whenFalse, walk);
      walk.w = join(a, walk.w);
      return;
    }
    if (ts.isCallExpression(e) || ts.isNewExpression(e)) return this.call(e, walk);
    if (ts.isPropertyAccessExpression(e)) return this.expr(e.expression, walk);
    this.node(e, walk);
  }

  /** Any other node: its child expressions in order. */
  private node(n: ts.Node, walk: Walk): void {
    ts.forEachChild(n, (c) => {
      if (ts.isStatement(c)) this.stmt(c, walk);
      else if (ts.isExpression(c)) this.expr(c, walk);
      else this.node(c, walk);
    });
  }

  private binary(e: ts.BinaryExpression, walk: Walk): void {
    const op = e.operatorToken.kind;
    if (op === ts.SyntaxKind.EqualsToken) {
      const left = skipOuter(e.left);
      this.expr(e.right, walk);
      if (ts.isIdentifier(left) && left.text === this.name && this.deps.symbolAt(left) === this.holder) {
        if (walk.w === false) walk.w = true;
        return;
      }
      this.expr(e.left, walk);
      return;
    }
    if (op === ts.SyntaxKind.AmpersandAmpersandToken || op === ts.SyntaxKind.BarBarToken || op === ts.SyntaxKind.QuestionQuestionToken ||
        op === ts.SyntaxKind.AmpersandAmpersandEqualsToken || op === ts.SyntaxKind.BarBarEqualsToken || op === ts.SyntaxKind.QuestionQuestionEqualsToken) {
      this.expr(e.left, walk);
      const before = walk.w;
      this.expr(e.right, walk);
      walk.w = before; // the right side may not run
      return;
    }
    this.expr(e.left, walk);
    this.expr(e.right, walk);
  }

  private call(e: ts.CallExpression | ts.NewExpression, walk: Walk): void {
    const callee = skipOuter(e.expression);
    // `(() => { … })()`: the literal runs here, with this state.
    if (isFunctionLike(callee) && ts.isCallExpression(e)) {
      for (const a of e.arguments) this.expr(a, walk);
      if (walk.w === false) this.follow([callee], walk);
      return;
    }
    if (ts.isPropertyAccessExpression(callee)) this.expr(callee.expression, walk);
    else if (!ts.isIdentifier(callee)) this.expr(callee, walk);
    else if (callee.text === this.name && this.deps.symbolAt(callee) === this.holder) this.read(walk);
    for (const a of e.arguments ?? []) {
      const arg = skipOuter(a);
      // A function passed by name may be called by the callee at any time: judged on its own.
      if (ts.isIdentifier(arg) && this.readers.has(arg.text)) {
        for (const fn of this.functionsNamed(arg)) this.detached(fn, walk);
      } else this.expr(a, walk);
    }
    if (walk.w !== false) return;
    const name = calleeName(e);
    if (name === undefined || !this.readers.has(name)) return;
    const fns = this.deps.callees(e).filter((fn) => !!fn.body);
    if (fns.length === 0 || walk.depth >= MAX_DEPTH) {
      this.read(walk); // may reach the variable and cannot be followed
      return;
    }
    this.follow(fns, walk);
  }

  /** Runs the callees with the current state: their reads count, and the state after is written on every callee's every exit. */
  private follow(fns: FunctionLike[], walk: Walk): void {
    let out = true;
    for (const fn of fns) {
      const s = this.summary(fn);
      if (s.unsafe) walk.unsafe = true;
      out &&= s.out;
      this.throwPoint(walk, s.throws);
    }
    if (walk.w === false && out) walk.w = true;
  }

  /** A callback: it may run after other requests, so it must write before it reads on its own. */
  private detached(fn: FunctionLike, walk: Walk): void {
    if (this.names(fn) && this.summary(fn).unsafe) walk.unsafe = true;
  }

  private functionsNamed(id: ts.Identifier): FunctionLike[] {
    const decls = this.deps.symbolAt(id)?.declarations ?? [];
    const out: FunctionLike[] = [];
    for (const d of decls) {
      if (isFunctionLike(d)) out.push(d);
      else if (ts.isVariableDeclaration(d) && d.initializer && isFunctionLike(skipOuter(d.initializer))) out.push(skipOuter(d.initializer) as FunctionLike);
    }
    return out;
  }
}

function join(a: boolean | null, b: boolean | null): boolean | null {
  if (a === null) return b;
  if (b === null) return a;
  return a && b;
}

/**
 * Names of the functions whose code names `name` (an identifier of that text) or calls, by name, a
 * function that does; module-level aliases (`export const log = capture`) count as calls of what they
 * name. A syntactic over-approximation, so that only such calls are resolved.
 */
function readerNames(functions: readonly FunctionLike[], name: string): Set<string> {
  const calls = namesUsed(functions);
  const readers = new Set<string>();
  for (const [owner, used] of calls) if (used.has(name)) readers.add(owner);
  addCallersByName(calls, readers);
  return readers;
}

const namesUsedCache = new WeakMap<readonly FunctionLike[], Map<string, Set<string>>>();

/**
 * Every identifier each named function's body (and each module-level alias `const f = g` / `= x.g`)
 * names, by owner name; computed once per program (the same for every variable asked about).
 */
function namesUsed(functions: readonly FunctionLike[]): Map<string, Set<string>> {
  const cached = namesUsedCache.get(functions);
  if (cached) return cached;
  const calls = new Map<string, Set<string>>();
  const add = (owner: string, n: ts.Node): void => {
    const used = calls.get(owner) ?? new Set<string>();
    calls.set(owner, used);
    const visit = (x: ts.Node): void => {
      if (ts.isIdentifier(x)) used.add(x.text);
      ts.forEachChild(x, visit);
    };
    visit(n);
  };
  const aliases = new Set<ts.SourceFile>();
  for (const fn of functions) {
    const owner = functionName(fn) ?? (fn.name && (ts.isIdentifier(fn.name) || ts.isPrivateIdentifier(fn.name)) ? fn.name.text : undefined);
    if (owner && fn.body) add(owner, fn.body);
    aliases.add(fn.getSourceFile());
  }
  for (const sf of aliases) {
    for (const st of sf.statements) {
      if (!ts.isVariableStatement(st)) continue;
      for (const d of st.declarationList.declarations) {
        const init = d.initializer && skipOuter(d.initializer);
        if (init && ts.isIdentifier(d.name) && (ts.isIdentifier(init) || ts.isPropertyAccessExpression(init))) add(d.name.text, init);
      }
    }
  }
  namesUsedCache.set(functions, calls);
  return calls;
}

/** Whether the source text of `node` contains one of `names`: a cheap test before walking its tree. */
function mentionsAny(node: ts.Node, names: Iterable<string>): boolean {
  const text = node.getSourceFile().text.slice(node.pos, node.end);
  for (const name of names) if (text.includes(name)) return true;
  return false;
}
