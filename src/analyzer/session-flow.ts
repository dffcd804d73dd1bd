/**
 * Session-id data flow: which values in a program are MCP session ids.
 *
 * Session ids are tracked as data, not matched by name. Sources are the places the SDKs and the
 * Streamable HTTP transport hand a session id to server code (spec 2025-03-26 … 2025-11-25,
 * "Session Management"; SDK v1/v2 `RequestHandlerExtra.sessionId`, `Transport.sessionId`,
 * `onsessioninitialized(sessionId)`, `sessionIdGenerator`):
 * - a read of a property named `sessionId` / `session_id` (`extra.sessionId`, `ctx.sessionId`,
 *   `transport.sessionId`, `req.query.sessionId`, `req.params.session_id`), unless the property is
 *   declared by a non-MCP package under `node_modules`;
 * - the `Mcp-Session-Id` header in any spelling and accessor (`req.headers['mcp-session-id']`,
 *   `req.header('Mcp-Session-Id')`, `headers.get(HEADER)` with a string constant, …);
 * - `url.searchParams.get('sessionId')`;
 * - the parameter of `onsessioninitialized` / `onsessionclosed`;
 * - the value a `sessionIdGenerator` returns when it is a variable (a captured constant).
 *
 * Taint then flows through variable initializers and assignments, destructuring, aliases
 * (`??`, `||`, conditionals, casts, `await`), template literals and `+` (composite keys such as
 * `${sessionId}:${uri}` are still keyed by session), string conversions, call arguments into
 * parameters, return values into call sites, and class fields (including `#private`), across files
 * (imports are resolved through the type checker's alias symbols).
 *
 * The solver is a fixpoint over flow edges collected in one walk per file. Call targets are resolved
 * lazily, only for calls whose arguments turn out to carry a session id, so the checker does no work
 * for the large majority of calls.
 */
import { ts } from 'ts-morph';
import {
  calleeName,
  enclosingFunction,
  functionName,
  functionOf,
  isFunctionLike,
  isUndefinedLiteral,
  propertyNameText,
  returnedExpressions,
  skipOuter,
  type FunctionLike,
} from './ast.js';
import { collectHandlerReferences } from './handlers.js';
import { SdkTypes } from './sdk-types.js';

// Re-exported for modules that imported these helpers from here before they moved to `ast.ts`.
export { calleeName, enclosingFunction, functionName, functionOf, isFunctionLike, isUndefinedLiteral, propertyNameText, returnedExpressions, skipOuter, type FunctionLike };

/** Property names whose read yields a session id. */
export const SESSION_ID_PROPERTIES = new Set(['sessionId', 'session_id', 'sessionID']);
/** The Streamable HTTP session header, lower-cased (spec: `Mcp-Session-Id`, 2025-11-25 spells it `MCP-Session-Id`). */
export const SESSION_HEADER = 'mcp-session-id';
const HEADER_GETTERS = new Set(['get', 'header', 'getHeader', 'get_header', 'headers']);
/** String methods whose result is still "the session id" (or derived from it) when called on one. */
const STRING_METHODS = new Set([
  'toString', 'trim', 'toLowerCase', 'toUpperCase', 'slice', 'substring', 'padStart', 'padEnd', 'concat', 'valueOf', 'normalize',
]);
const STRING_FUNCTIONS = new Set(['String', 'encodeURIComponent', 'decodeURIComponent']);
/** Packages whose `sessionId` properties are MCP session ids. */
const MCP_PACKAGE = /[\\/]node_modules[\\/]@modelcontextprotocol[\\/]/;

type Term =
  | 'src'
  | { sym: ts.Symbol }
  | { call: ts.CallExpression | ts.NewExpression }
  | { prop: ts.PropertyAccessExpression | ts.ElementAccessExpression }
  | { any: Term[] };

interface CallEdge {
  call: ts.CallExpression | ts.NewExpression;
  index: number;
  term: Term;
}

export class SessionFlow {
  private readonly tainted = new Set<ts.Symbol>();
  private readonly taintedReturns = new Set<ts.Node>();
  private readonly taintedPropNames = new Set<string>();
  private readonly edges: Array<{ target: ts.Symbol; term: Term }> = [];
  /** Assignments whose target is a property (`this.x = …`, `obj.#y = …`): the target symbol is resolved lazily. */
  private readonly propEdges: Array<{ target: ts.PropertyAccessExpression; term: Term }> = [];
  private readonly returns: Array<{ fn: ts.Node; term: Term }> = [];
  /** `const { scope } = options` / `function f({ scope })`: the binding holds what the property holds (resolved lazily). */
  private readonly bindingEdges: Array<{ name: ts.Identifier; pattern: ts.ObjectBindingPattern; key: string }> = [];
  /** Object-literal properties whose contextual member is tainted lazily, when their value carries a session id. */
  private readonly literalEdges: Array<{ prop: ts.PropertyAssignment | ts.ShorthandPropertyAssignment; term: Term }> = [];
  /** Calls whose result stands for a session (an id minted once per session, see `session-scope.ts`). */
  private readonly extraSources = new Set<ts.Node>();
  /** Names of the functions whose return value is tainted (`undefined` for an unnamed one): calls by other names need no resolution. */
  private readonly taintedReturnNames = new Set<string | undefined>();
  private readonly callEdges: CallEdge[] = [];
  private readonly calleeCache = new Map<ts.Node, FunctionLike[]>();
  /** Every call by its callee's name text, to find the call sites of a function without resolving every call. */
  private readonly callsByName = new Map<string, Array<ts.CallExpression | ts.NewExpression>>();
  private readonly symbolCache = new Map<ts.Node, ts.Symbol | undefined>();
  private readonly termCache = new Map<ts.Node, Term | null>();
  /** Every variable (by symbol) → the expressions assigned to it, for value-shape questions (is it a transport?). */
  readonly assignments = new Map<ts.Symbol, ts.Expression[]>();
  /** Object-literal properties `sessionIdGenerator: …` whose generator returns an id (stateful transports). */
  readonly statefulGenerators: Array<ts.PropertyAssignment | ts.ShorthandPropertyAssignment> = [];
  /** `new SSEServerTransport(…)` sites (the legacy 2024-11-05 HTTP+SSE transport). */
  readonly sseTransports: ts.NewExpression[] = [];
  /** `new McpServer(…)` / `new Server(…)` by name (SessionScope checks they are the SDK's). */
  readonly serverConstructions: ts.NewExpression[] = [];
  /** Which types are the SDK's session-bound objects (transports, servers, task stores). */
  readonly sdk: SdkTypes;
  private solved = false;

  /**
   * @param skip top-level statements to leave out of the flow (bundled third-party modules that hold no
   *   session-id source; see `src/analyzer/bundle.ts`).
   */
  constructor(
    readonly checker: ts.TypeChecker,
    private readonly files: readonly ts.SourceFile[],
    private readonly skip?: (statement: ts.Statement) => boolean,
  ) {
    this.sdk = new SdkTypes(checker);
    for (const file of files) this.collect(file);
    this.solve();
  }

  /** True when the project opens sessionful transports (a `sessionIdGenerator` that returns an id, or the legacy SSE transport). */
  get isStateful(): boolean {
    return this.statefulGenerators.length > 0 || this.sseTransports.length > 0;
  }

  #statefulFiles: Set<ts.SourceFile> | undefined;

  /**
   * True when `file` belongs to a sessionful server: it opens a sessionful transport, or it is in the
   * import graph of a file that does (any file that imports such a file, directly or not, and everything
   * those files import). In a directory holding several servers, files of a stateless server that shares
   * no entry point with a sessionful one are not in scope. Static `import`/`export … from`,
   * `import x = require()`, `require()` and `import()` with string literals are followed.
   */
  isStatefulFile(file: ts.SourceFile): boolean {
    if (!this.isStateful) return false;
    this.#statefulFiles ??= this.computeStatefulFiles();
    return this.#statefulFiles.has(file);
  }

  private computeStatefulFiles(): Set<ts.SourceFile> {
    const imports = new Map<ts.SourceFile, ts.SourceFile[]>();
    const importers = new Map<ts.SourceFile, ts.SourceFile[]>();
    const inProject = new Set(this.files);
    for (const file of this.files) {
      const targets: ts.SourceFile[] = [];
      for (const spec of moduleSpecifiers(file)) {
        const decl = this.symbolAt(spec)?.valueDeclaration;
        if (decl && ts.isSourceFile(decl) && inProject.has(decl) && decl !== file) targets.push(decl);
      }
      imports.set(file, targets);
      for (const t of targets) {
        const list = importers.get(t);
        if (list) list.push(file);
        else importers.set(t, [file]);
      }
    }
    const closure = (start: Iterable<ts.SourceFile>, edges: Map<ts.SourceFile, ts.SourceFile[]>): Set<ts.SourceFile> => {
      const seen = new Set(start);
      const queue = [...seen];
      while (queue.length > 0) {
        for (const next of edges.get(queue.pop()!) ?? []) {
          if (!seen.has(next)) {
            seen.add(next);
            queue.push(next);
          }
        }
      }
      return seen;
    };
    const roots = [...this.statefulGenerators, ...this.sseTransports].map((n) => n.getSourceFile());
    // Entry points that reach a sessionful transport, then everything they load.
    return closure(closure(roots, importers), imports);
  }

  /** Does this expression evaluate to (or embed) an MCP session id? */
  isSessionId(expr: ts.Expression): boolean {
    const term = this.term(expr);
    return term !== null && this.evaluate(term);
  }

  /** Is this symbol (variable, parameter, field) known to hold a session id? */
  isSessionIdSymbol(symbol: ts.Symbol | undefined): boolean {
    return symbol !== undefined && this.tainted.has(symbol);
  }

  /**
   * Whether a function nested in `fn` refers to the local `name` declares (a closure keeps it, so it
   * outlives `fn`'s call). `name` is the declaration's identifier, inside `fn`.
   */
  isCapturedByClosure(name: ts.Identifier, fn: ts.Node): boolean {
    const symbol = this.symbolAt(name);
    let captured = false;
    const visit = (n: ts.Node): void => {
      if (captured) return;
      if (ts.isIdentifier(n) && n !== name && n.text === name.text && this.refersTo(n, symbol)) {
        for (let p: ts.Node | undefined = n.parent; p && p !== fn; p = p.parent) if (isFunctionLike(p)) captured = true;
      }
      ts.forEachChild(n, visit);
    };
    visit(fn);
    return captured;
  }

  /** An identifier refers to `symbol`, also as a shorthand property (`{ registry }` passes the variable `registry`). */
  private refersTo(id: ts.Identifier, symbol: ts.Symbol | undefined): boolean {
    if (ts.isShorthandPropertyAssignment(id.parent) && id.parent.name === id) return this.checker.getShorthandAssignmentValueSymbol(id.parent) === symbol;
    return this.symbolAt(id) === symbol;
  }

  /** The symbol at a node, following import aliases to the declaration. */
  symbolAt(node: ts.Node): ts.Symbol | undefined {
    if (this.symbolCache.has(node)) return this.symbolCache.get(node);
    let symbol: ts.Symbol | undefined;
    try {
      symbol = this.checker.getSymbolAtLocation(node);
      if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = this.checker.getAliasedSymbol(symbol);
    } catch {
      symbol = undefined;
    }
    this.symbolCache.set(node, symbol);
    return symbol;
  }

  /** The function-like declarations a call or `new` may invoke (through variables, imports and methods). */
  callees(call: ts.CallExpression | ts.NewExpression): FunctionLike[] {
    const cached = this.calleeCache.get(call);
    if (cached) return cached;
    const out: FunctionLike[] = [];
    const callee = skipOuter(call.expression);
    const symbol = this.symbolAt(ts.isPropertyAccessExpression(callee) ? callee.name : callee);
    for (const decl of symbol?.declarations ?? []) {
      if (isFunctionLike(decl)) out.push(decl);
      else if (ts.isParameter(decl)) out.push(...this.functionsPassedFor(decl));
      else if (ts.isBindingElement(decl)) out.push(...this.functionsPassedAsOption(decl, 0));
      else if ((ts.isVariableDeclaration(decl) || ts.isPropertyAssignment(decl) || ts.isPropertyDeclaration(decl)) && decl.initializer) {
        const init = skipOuter(decl.initializer);
        if (ts.isArrowFunction(init) || ts.isFunctionExpression(init)) out.push(init);
      } else if (ts.isPropertyDeclaration(decl)) out.push(...this.functionsStoredIn(decl));
      else if (ts.isClassDeclaration(decl) || ts.isClassExpression(decl)) {
        const ctor = decl.members.find(ts.isConstructorDeclaration);
        if (ctor) out.push(ctor);
      }
      // Dynamic dispatch: an interface or abstract member runs its implementations, a method its overrides.
      if (ts.isMethodSignature(decl) || ts.isPropertySignature(decl) || ts.isMethodDeclaration(decl) || ts.isPropertyDeclaration(decl)) {
        if (ts.isCallExpression(call)) out.push(...this.implementations(decl));
      }
    }
    this.calleeCache.set(call, out);
    return out;
  }

  #heritage: Map<ts.Symbol, ts.ClassLikeDeclaration[]> | undefined;
  private readonly implementationCache = new Map<ts.Node, FunctionLike[]>();

  /** Classes of the program that extend or implement a class or interface, directly or not. */
  subclassesOf(symbol: ts.Symbol): ts.ClassLikeDeclaration[] {
    if (!this.#heritage) {
      const heritage = new Map<ts.Symbol, ts.ClassLikeDeclaration[]>();
      for (const cls of this.projectClasses()) {
        for (const clause of cls.heritageClauses ?? []) {
          for (const t of clause.types) {
            const e = skipOuter(t.expression);
            const base = this.symbolAt(ts.isPropertyAccessExpression(e) ? e.name : e);
            // An unresolved import (a package that is not installed) is the checker's one `unknown` symbol:
            // it would make every class with an unresolved base a subclass of every unresolved type.
            if (base?.declarations?.length) addTo(heritage, base, cls);
          }
        }
      }
      this.#heritage = heritage;
    }
    const out: ts.ClassLikeDeclaration[] = [];
    const queue = [symbol];
    const seen = new Set<ts.Symbol>(queue);
    while (queue.length > 0 && out.length < 50) {
      for (const cls of this.#heritage.get(queue.pop()!) ?? []) {
        out.push(cls);
        const own = cls.name && this.symbolAt(cls.name);
        if (own && !seen.has(own)) {
          seen.add(own);
          queue.push(own);
        }
      }
    }
    return out;
  }

  /** The bodies that run for a call of an interface or class member: the implementations and overrides in subclasses. */
  private implementations(member: ts.Declaration): FunctionLike[] {
    const cached = this.implementationCache.get(member);
    if (cached) return cached;
    const out: FunctionLike[] = [];
    this.implementationCache.set(member, out);
    const owner = member.parent;
    const name = (member as ts.NamedDeclaration).name;
    const text = name && propertyNameText(name as ts.PropertyName);
    if (!text || !owner) return out;
    const ownerSymbol = (ts.isClassLike(owner) || ts.isInterfaceDeclaration(owner)) && owner.name ? this.symbolAt(owner.name) : undefined;
    const nominal = ownerSymbol ? this.subclassesOf(ownerSymbol) : [];
    for (const cls of nominal) out.push(...memberBodies(cls, text));
    // Structural typing: a project class that has the member and is assignable to the interface or type literal.
    if (nominal.length === 0 && !owner.getSourceFile().isDeclarationFile && (ts.isInterfaceDeclaration(owner) || ts.isTypeLiteralNode(owner))) {
      let target: ts.Type | undefined;
      try {
        target = this.checker.getTypeAtLocation(owner);
      } catch {
        target = undefined;
      }
      for (const cls of target ? this.classesWithMember(text) : []) {
        try {
          if (this.structurallyImplements(cls, target!)) out.push(...memberBodies(cls, text));
        } catch {
          /* no type information */
        }
      }
    }
    return out;
  }

  /**
   * For the data flow only: a call of an interface member (`tracker.subscribe(notify, uri)`) also runs the
   * functions that the project's factories declared to return that interface put in the object they return.
   */
  private objectMemberCallees(call: ts.CallExpression | ts.NewExpression): FunctionLike[] {
    const callee = skipOuter(call.expression);
    if (!ts.isCallExpression(call) || !ts.isPropertyAccessExpression(callee)) return [];
    const out: FunctionLike[] = [];
    for (const decl of this.symbolAt(callee.name)?.declarations ?? []) {
      const owner = decl.parent;
      if (!(ts.isMethodSignature(decl) || ts.isPropertySignature(decl)) || !owner || !ts.isInterfaceDeclaration(owner) || owner.getSourceFile().isDeclarationFile) continue;
      const iface = this.symbolAt(owner.name);
      if (iface) out.push(...this.objectImplementations(iface, callee.name.text));
    }
    return out;
  }

  #typedFactories: Map<string, FunctionLike[]> | undefined;

  /**
   * The functions stored as `member` in the object literals returned by project functions whose declared
   * return type is the interface `iface` (also `Promise<iface>`): the object's member is that function.
   */
  private objectImplementations(iface: ts.Symbol, member: string): FunctionLike[] {
    if (!this.#typedFactories) {
      const index = new Map<string, FunctionLike[]>();
      const visit = (n: ts.Node): void => {
        if (isFunctionLike(n) && n.type) for (const name of returnTypeNames(n.type)) addTo(index, name, n);
        ts.forEachChild(n, visit);
      };
      for (const sf of this.files) visit(sf);
      this.#typedFactories = index;
    }
    const out: FunctionLike[] = [];
    for (const fn of this.#typedFactories.get(iface.name) ?? []) {
      if (!fn.type || !returnTypeRefs(fn.type).some((r) => this.symbolAt(ts.isIdentifier(r.typeName) ? r.typeName : r.typeName.right) === iface)) continue;
      for (const e of returnedExpressions(fn)) {
        const literal = skipOuter(e);
        if (!ts.isObjectLiteralExpression(literal)) continue;
        for (const p of literal.properties) {
          if (!p.name || propertyNameText(p.name) !== member) continue;
          if (ts.isMethodDeclaration(p) && p.body) out.push(p);
          const value = ts.isPropertyAssignment(p) ? skipOuter(p.initializer) : ts.isShorthandPropertyAssignment(p) ? p.name : undefined;
          if (!value) continue;
          if (ts.isArrowFunction(value) || ts.isFunctionExpression(value)) out.push(value);
          else if (ts.isIdentifier(value)) {
            const decl = (ts.isShorthandPropertyAssignment(p) ? this.checker.getShorthandAssignmentValueSymbol(p) : this.symbolAt(value))?.valueDeclaration;
            if (decl && isFunctionLike(decl)) out.push(decl);
            else if (decl && ts.isVariableDeclaration(decl) && decl.initializer) {
              const init = skipOuter(decl.initializer);
              if (ts.isArrowFunction(init) || ts.isFunctionExpression(init)) out.push(init);
            }
          }
        }
      }
    }
    return out;
  }

  /**
   * The class's instances are assignable to `target`. When the class extends a base the checker cannot
   * resolve (a library without its types), the members it inherits are unknown: compare the members
   * the class does have.
   */
  private structurallyImplements(cls: ts.ClassLikeDeclaration, target: ts.Type): boolean {
    const instance = this.checker.getTypeAtLocation(cls);
    if (this.checker.isTypeAssignableTo(instance, target)) return true;
    const base = cls.heritageClauses?.find((h) => h.token === ts.SyntaxKind.ExtendsKeyword)?.types[0];
    if (!base || !(this.checker.getTypeAtLocation(base).flags & ts.TypeFlags.Any)) return false;
    const owner = cls;
    return target.getProperties().every((p) => {
      const own = instance.getProperty(p.name);
      if (!own) return true;
      const decl = p.valueDeclaration ?? p.declarations?.[0];
      return !decl || this.checker.isTypeAssignableTo(this.checker.getTypeOfSymbolAtLocation(own, owner), this.checker.getTypeOfSymbolAtLocation(p, decl));
    });
  }

  #classesByMember: Map<string, ts.ClassLikeDeclaration[]> | undefined;

  /** Project classes that declare a member named `name`. */
  private classesWithMember(name: string): ts.ClassLikeDeclaration[] {
    if (!this.#classesByMember) {
      const index = new Map<string, ts.ClassLikeDeclaration[]>();
      for (const cls of this.projectClasses()) {
        for (const m of cls.members) {
          const t = m.name && propertyNameText(m.name);
          if (t) addTo(index, t, cls);
        }
      }
      this.#classesByMember = index;
    }
    return this.#classesByMember.get(name) ?? [];
  }

  #classes: ts.ClassLikeDeclaration[] | undefined;

  /** Every class declaration and expression of the program's files (collected once). */
  projectClasses(): ts.ClassLikeDeclaration[] {
    if (!this.#classes) {
      const out: ts.ClassLikeDeclaration[] = [];
      const visit = (node: ts.Node): void => {
        if (ts.isClassLike(node)) out.push(node);
        ts.forEachChild(node, visit);
      };
      for (const file of this.files) visit(file);
      this.#classes = out;
    }
    return this.#classes;
  }

  /** The `new` expressions in the program that construct `cls` (by name first, then resolved). */
  instantiationsOf(cls: ts.ClassLikeDeclaration): ts.NewExpression[] {
    const name = cls.name?.text ?? (cls.parent && ts.isVariableDeclaration(cls.parent) && ts.isIdentifier(cls.parent.name) ? cls.parent.name.text : undefined);
    if (!name) return [];
    return (this.callsByName.get(name) ?? []).filter((site): site is ts.NewExpression => {
      if (!ts.isNewExpression(site)) return false;
      const callee = skipOuter(site.expression);
      return (this.symbolAt(ts.isPropertyAccessExpression(callee) ? callee.name : callee)?.declarations ?? []).some((d) => d === cls || (ts.isVariableDeclaration(d) && d.initializer === cls));
    });
  }

  /** The calls and `new`s in the program that invoke `fn` (by name first, then resolved). */
  callSitesOf(fn: FunctionLike): Array<ts.CallExpression | ts.NewExpression> {
    const names = new Set<string>();
    const own = functionName(fn);
    if (own) names.add(own);
    if ((ts.isMethodDeclaration(fn) || ts.isGetAccessorDeclaration(fn)) && fn.name) {
      const t = propertyNameText(fn.name);
      if (t) names.add(t);
    }
    if (ts.isConstructorDeclaration(fn) && fn.parent.name) names.add(fn.parent.name.text);
    const parent = fn.parent;
    if (parent && (ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) && parent.name) {
      const t = propertyNameText(parent.name);
      if (t) names.add(t);
    }
    const out: Array<ts.CallExpression | ts.NewExpression> = [];
    for (const name of names) for (const site of this.callsByName.get(name) ?? []) if (this.callees(site).includes(fn)) out.push(site);
    return out;
  }

  /**
   * A field declared without a value that its class assigns a function to (`this._factory = factory`
   * in the constructor): the function expressions assigned, or passed for the parameter assigned.
   */
  private functionsStoredIn(field: ts.PropertyDeclaration): FunctionLike[] {
    const name = field.name && propertyNameText(field.name);
    const cls = field.parent;
    if (!name || !ts.isClassLike(cls)) return [];
    const out: FunctionLike[] = [];
    const visit = (n: ts.Node): void => {
      if (n !== cls && ts.isClassLike(n)) return;
      if (ts.isBinaryExpression(n) && n.operatorToken.kind === ts.SyntaxKind.EqualsToken) {
        const left = skipOuter(n.left);
        if (ts.isPropertyAccessExpression(left) && left.expression.kind === ts.SyntaxKind.ThisKeyword && left.name.text === name) {
          const value = skipOuter(n.right);
          const fn = functionOf(value);
          if (fn) out.push(fn);
          else if (ts.isIdentifier(value)) {
            const decl = this.symbolAt(value)?.valueDeclaration;
            if (decl && ts.isParameter(decl)) out.push(...this.functionsPassedFor(decl));
          }
        }
      }
      ts.forEachChild(n, visit);
    };
    visit(cls);
    return out;
  }

  /**
   * `function withSession(extra, fn) { return fn(extra.sessionId) }`: calling the parameter `fn` calls
   * whatever function expressions the call sites of `withSession` pass in its place (one level).
   */
  private functionsPassedFor(param: ts.ParameterDeclaration): FunctionLike[] {
    const owner = param.parent;
    if (!isFunctionLike(owner)) return [];
    const index = owner.parameters.indexOf(param);
    // A constructor's parameter: what each `new` of its class passes (`new ServerList(async () => createServer())`).
    if (ts.isConstructorDeclaration(owner)) {
      if (index < 0) return [];
      return this.instantiationsOf(owner.parent).flatMap((site) => {
        const fn = site.arguments?.[index] && functionOf(site.arguments[index]!);
        return fn ? [fn] : [];
      });
    }
    const name = functionName(owner);
    if (!name || index < 0) return [];
    const out: FunctionLike[] = [];
    for (const site of this.callsByName.get(name) ?? []) {
      const arg = site.arguments?.[index];
      const fn = arg && functionOf(arg);
      if (!fn) continue;
      const callee = skipOuter(site.expression);
      const decls = this.symbolAt(ts.isPropertyAccessExpression(callee) ? callee.name : callee)?.declarations ?? [];
      if (decls.some((d) => d === owner || (ts.isVariableDeclaration(d) && d.initializer && skipOuter(d.initializer) === owner))) out.push(fn);
    }
    return out;
  }

  /**
   * `async ({ createServer }) => { … createServer(req) … }`: calling an option destructured from a
   * parameter calls the functions the call sites pass for that property (`f({ createServer })`,
   * `f({ createServer: async () => … })`), following a shorthand value through variables and through
   * the same option of the caller (a factory handed down two levels), up to three levels.
   */
  private functionsPassedAsOption(element: ts.BindingElement, depth: number): FunctionLike[] {
    const pattern = element.parent;
    const param = pattern.parent;
    const key = element.propertyName ? propertyNameText(element.propertyName) : ts.isIdentifier(element.name) ? element.name.text : undefined;
    if (depth > 2 || !key || !ts.isObjectBindingPattern(pattern) || !ts.isParameter(param) || !isFunctionLike(param.parent)) return [];
    const owner = param.parent;
    const index = owner.parameters.indexOf(param);
    const name = functionName(owner);
    if (!name || index < 0) return [];
    const out: FunctionLike[] = [];
    for (const site of this.callsByName.get(name) ?? []) {
      const arg = site.arguments?.[index] && skipOuter(site.arguments[index]!);
      if (!arg || !ts.isObjectLiteralExpression(arg)) continue;
      const callee = skipOuter(site.expression);
      const decls = this.symbolAt(ts.isPropertyAccessExpression(callee) ? callee.name : callee)?.declarations ?? [];
      if (!decls.some((d) => d === owner || (ts.isVariableDeclaration(d) && d.initializer && skipOuter(d.initializer) === owner))) continue;
      for (const prop of arg.properties) {
        if (!prop.name || propertyNameText(prop.name) !== key) continue;
        if (ts.isMethodDeclaration(prop)) out.push(prop);
        else if (ts.isPropertyAssignment(prop) || ts.isShorthandPropertyAssignment(prop)) out.push(...this.functionsOfValue(ts.isPropertyAssignment(prop) ? prop.initializer : prop.name, depth + 1));
      }
    }
    return out;
  }

  /** The functions a value passed as an option stands for: a function expression, or a variable or option holding one. */
  private functionsOfValue(value: ts.Expression, depth: number): FunctionLike[] {
    const fn = functionOf(value);
    if (fn) return [fn];
    const e = skipOuter(value);
    if (!ts.isIdentifier(e)) return [];
    const decl = (ts.isShorthandPropertyAssignment(e.parent) ? this.checker.getShorthandAssignmentValueSymbol(e.parent) : this.symbolAt(e))?.valueDeclaration;
    if (!decl) return [];
    if (ts.isFunctionDeclaration(decl)) return [decl];
    if (ts.isVariableDeclaration(decl) && decl.initializer) return functionOf(decl.initializer) ? [functionOf(decl.initializer)!] : [];
    if (ts.isBindingElement(decl)) return this.functionsPassedAsOption(decl, depth);
    return [];
  }

  // ---------------------------------------------------------------- collection

  private collect(file: ts.SourceFile): void {
    const visit = (node: ts.Node): void => {
      if (this.skip && node.parent === file && this.skip(node as ts.Statement)) return;
      switch (node.kind) {
        case ts.SyntaxKind.VariableDeclaration: {
          const decl = node as ts.VariableDeclaration;
          if (ts.isIdentifier(decl.name)) {
            if (decl.initializer) this.addEdge(decl.name, decl.initializer);
          } else this.collectBinding(decl.name);
          break;
        }
        case ts.SyntaxKind.Parameter: {
          const param = node as ts.ParameterDeclaration;
          if (!ts.isIdentifier(param.name)) {
            if (!isToolArgumentsParameter(param)) this.collectBinding(param.name);
          }
          else if (param.initializer) this.addEdge(param.name, param.initializer);
          break;
        }
        case ts.SyntaxKind.BinaryExpression: {
          const bin = node as ts.BinaryExpression;
          const op = bin.operatorToken.kind;
          if (
            op === ts.SyntaxKind.EqualsToken ||
            op === ts.SyntaxKind.QuestionQuestionEqualsToken ||
            op === ts.SyntaxKind.BarBarEqualsToken
          ) {
            this.collectAssignment(bin.left, bin.right);
          }
          break;
        }
        case ts.SyntaxKind.CallExpression:
        case ts.SyntaxKind.NewExpression: {
          const call = node as ts.CallExpression | ts.NewExpression;
          const calledName = calleeName(call);
          if (calledName) {
            const list = this.callsByName.get(calledName);
            if (list) list.push(call);
            else this.callsByName.set(calledName, [call]);
          }
          call.arguments?.forEach((arg, index) => {
            if (ts.isSpreadElement(arg)) return;
            const term = this.term(arg);
            if (term !== null) this.callEdges.push({ call, index, term });
          });
          if (ts.isNewExpression(call)) {
            const made = this.constructedClassName(call);
            if (made === 'SSEServerTransport') this.sseTransports.push(call);
            else if (SERVER_CLASS_NAMES.has(made ?? '') || SERVER_CLASS_NAMES.has(calleeName(call) ?? '')) this.serverConstructions.push(call);
          }
          if (ts.isCallExpression(call)) collectHandlerReferences(call, (n) => this.symbolAt(n));
          break;
        }
        case ts.SyntaxKind.ReturnStatement: {
          const ret = node as ts.ReturnStatement;
          const fn = enclosingFunction(ret);
          if (fn && ret.expression) this.addReturn(fn, ret.expression);
          break;
        }
        case ts.SyntaxKind.ArrowFunction: {
          const arrow = node as ts.ArrowFunction;
          if (!ts.isBlock(arrow.body)) this.addReturn(arrow, arrow.body);
          break;
        }
        case ts.SyntaxKind.PropertyAssignment:
        case ts.SyntaxKind.MethodDeclaration: {
          const prop = node as ts.PropertyAssignment | ts.MethodDeclaration;
          const name = propertyNameText(prop.name);
          if (name === 'onsessioninitialized' || name === 'onsessionclosed') {
            const fn = ts.isPropertyAssignment(prop) ? functionOf(prop.initializer) : prop;
            const first = fn?.parameters[0];
            if (first && ts.isIdentifier(first.name)) this.seed(first.name);
          } else if (name === 'sessionIdGenerator' && ts.isPropertyAssignment(prop)) {
            this.collectGenerator(prop, prop.initializer);
          } else if (ts.isPropertyAssignment(prop) && ts.isObjectLiteralExpression(prop.parent)) {
            this.collectLiteralProperty(prop, prop.initializer);
          }
          break;
        }
        case ts.SyntaxKind.ShorthandPropertyAssignment: {
          const prop = node as ts.ShorthandPropertyAssignment;
          if (prop.name.text === 'sessionIdGenerator') this.collectGenerator(prop, prop.name);
          else this.collectLiteralProperty(prop, prop.name);
          break;
        }
        default:
          break;
      }
      ts.forEachChild(node, visit);
    };
    visit(file);
  }

  /** `{ id: sessionId }`: the literal's property (or the typed interface member it fills) holds what the value holds. */
  private collectLiteralProperty(prop: ts.PropertyAssignment | ts.ShorthandPropertyAssignment, value: ts.Expression): void {
    const term = ts.isShorthandPropertyAssignment(prop) ? this.shorthandTerm(prop) : this.term(value);
    if (term === null) return;
    if (propertyNameText(prop.name) === undefined) return;
    const own = this.symbolAt(prop.name);
    if (own) this.edges.push({ target: own, term });
    // The interface member the literal fills is resolved only once its value turns out to carry a session
    // id: contextual typing of every object literal would cost more than the rest of the analysis.
    this.literalEdges.push({ prop, term });
  }

  /** The property of the literal's contextual type (the declared member it fills), if any. */
  private contextualProperty(prop: ts.PropertyAssignment | ts.ShorthandPropertyAssignment): ts.Symbol | undefined {
    const name = propertyNameText(prop.name);
    if (name === undefined) return undefined;
    try {
      const contextualType = this.checker.getContextualType(prop.parent as ts.ObjectLiteralExpression);
      // An optional parameter's type is `T | undefined`: its properties are T's.
      return contextualType && this.checker.getNonNullableType(contextualType).getProperty(name);
    } catch {
      return undefined;
    }
  }


  private shorthandTerm(prop: ts.ShorthandPropertyAssignment): Term | null {
    const symbol = this.checker.getShorthandAssignmentValueSymbol(prop);
    return symbol ? { sym: symbol } : null;
  }

  /** `sessionIdGenerator: options.sessionIdGenerator`: stateful only if the value's type can be a function. */
  private mayBeFunction(value: ts.Expression): boolean {
    try {
      const type = this.checker.getTypeAtLocation(value);
      const parts = type.isUnion() ? type.types : [type];
      return parts.some((t) => t.getCallSignatures().length > 0 || (t.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) !== 0);
    } catch {
      return true;
    }
  }

  /** The class a `new` constructs, by its declared name (so `import { SSEServerTransport as Legacy }` is still recognized). */
  constructedClassName(call: ts.NewExpression): string | undefined {
    const text = calleeName(call);
    if (text === 'SSEServerTransport') return text;
    const callee = skipOuter(call.expression);
    const symbol = this.symbolAt(ts.isPropertyAccessExpression(callee) ? callee.name : callee);
    return symbol?.getName() ?? text;
  }

  private collectGenerator(prop: ts.PropertyAssignment | ts.ShorthandPropertyAssignment, initializer: ts.Expression): void {
    const value = skipOuter(initializer);
    if (isUndefinedLiteral(value)) return;
    let fn: FunctionLike | undefined = functionOf(value);
    if (!fn && ts.isIdentifier(value)) {
      const decl = (ts.isShorthandPropertyAssignment(prop) ? this.checker.getShorthandAssignmentValueSymbol(prop) : this.symbolAt(value))?.valueDeclaration;
      if (decl && isFunctionLike(decl)) fn = decl;
      else if (decl && ts.isVariableDeclaration(decl) && decl.initializer) {
        if (isUndefinedLiteral(skipOuter(decl.initializer))) return;
        fn = functionOf(decl.initializer);
      }
    }
    if (!fn && !ts.isIdentifier(value) && !this.mayBeFunction(value)) return;
    if (fn) {
      const returned = returnedExpressions(fn);
      if (returned.length > 0 && returned.every((e) => isUndefinedLiteral(skipOuter(e)))) return;
      for (const e of returned) {
        const inner = skipOuter(e);
        if (ts.isIdentifier(inner)) this.seed(inner);
      }
    }
    this.statefulGenerators.push(prop);
  }

  private collectBinding(pattern: ts.BindingName): void {
    if (ts.isObjectBindingPattern(pattern)) {
      for (const el of pattern.elements) {
        const key = el.propertyName ? propertyNameText(el.propertyName) : ts.isIdentifier(el.name) ? el.name.text : undefined;
        if (ts.isIdentifier(el.name)) {
          if (key !== undefined && (SESSION_ID_PROPERTIES.has(key) || key.toLowerCase() === SESSION_HEADER)) this.seed(el.name);
          else if (key !== undefined) this.bindingEdges.push({ name: el.name, pattern, key });
        } else this.collectBinding(el.name);
      }
    } else if (ts.isArrayBindingPattern(pattern)) {
      for (const el of pattern.elements) if (ts.isBindingElement(el) && !ts.isIdentifier(el.name)) this.collectBinding(el.name);
    }
  }

  private collectAssignment(left: ts.Expression, right: ts.Expression): void {
    const target = skipOuter(left);
    if (ts.isIdentifier(target)) {
      this.addEdge(target, right);
    } else if (ts.isPropertyAccessExpression(target)) {
      const name = target.name.text;
      if (name === 'onsessioninitialized' || name === 'onsessionclosed') {
        const first = functionOf(right)?.parameters[0];
        if (first && ts.isIdentifier(first.name)) this.seed(first.name);
        return;
      }
      const term = this.term(right);
      if (term !== null) this.propEdges.push({ target, term });
    }
  }

  private addEdge(name: ts.Identifier, value: ts.Expression): void {
    const symbol = this.symbolAt(name);
    if (!symbol) return;
    const list = this.assignments.get(symbol);
    if (list) list.push(value);
    else this.assignments.set(symbol, [value]);
    const term = this.term(value);
    if (term !== null) this.edges.push({ target: symbol, term });
  }

  private addReturn(fn: ts.Node, value: ts.Expression): void {
    const term = this.term(value);
    if (term !== null) this.returns.push({ fn, term });
  }

  private seed(name: ts.Identifier): void {
    const symbol = this.symbolAt(name);
    if (symbol) this.tainted.add(symbol);
  }

  // ---------------------------------------------------------------- terms

  /** Compiles an expression into a small term whose truth depends only on the solver's sets. */
  private term(expr: ts.Expression): Term | null {
    const cached = this.termCache.get(expr);
    if (cached !== undefined) return cached;
    const term = this.compile(expr);
    this.termCache.set(expr, term);
    return term;
  }

  private compile(expr: ts.Expression): Term | null {
    const e = skipOuter(expr);
    switch (e.kind) {
      case ts.SyntaxKind.Identifier: {
        if ((e as ts.Identifier).text === 'undefined') return null;
        const symbol = this.symbolAt(e);
        return symbol ? { sym: symbol } : null;
      }
      case ts.SyntaxKind.PropertyAccessExpression: {
        const pa = e as ts.PropertyAccessExpression;
        if (SESSION_ID_PROPERTIES.has(pa.name.text) && this.isMcpSessionProperty(pa) && !this.isToolArguments(pa.expression)) return 'src';
        return { prop: pa };
      }
      case ts.SyntaxKind.ElementAccessExpression: {
        const ea = e as ts.ElementAccessExpression;
        const key = this.constantString(ea.argumentExpression);
        if (key !== undefined && (key.toLowerCase() === SESSION_HEADER || SESSION_ID_PROPERTIES.has(key))) return 'src';
        return null;
      }
      case ts.SyntaxKind.CallExpression: {
        const call = e as ts.CallExpression;
        const callee = skipOuter(call.expression);
        const first = call.arguments[0];
        if (ts.isPropertyAccessExpression(callee)) {
          const method = callee.name.text;
          if (first && HEADER_GETTERS.has(method)) {
            const key = this.constantString(first);
            if (key !== undefined && key.toLowerCase() === SESSION_HEADER) return 'src';
            if (key !== undefined && SESSION_ID_PROPERTIES.has(key) && method === 'get') return 'src';
          }
          if (STRING_METHODS.has(method)) {
            const inner = this.term(callee.expression);
            if (inner !== null) return any([inner, { call }]);
          }
        } else if (ts.isIdentifier(callee) && STRING_FUNCTIONS.has(callee.text) && first) {
          return this.term(first);
        }
        return { call };
      }
      case ts.SyntaxKind.ConditionalExpression: {
        const c = e as ts.ConditionalExpression;
        return any([this.term(c.whenTrue), this.term(c.whenFalse)]);
      }
      case ts.SyntaxKind.BinaryExpression: {
        const b = e as ts.BinaryExpression;
        switch (b.operatorToken.kind) {
          case ts.SyntaxKind.QuestionQuestionToken:
          case ts.SyntaxKind.BarBarToken:
          case ts.SyntaxKind.AmpersandAmpersandToken:
          case ts.SyntaxKind.PlusToken:
            return any([this.term(b.left), this.term(b.right)]);
          case ts.SyntaxKind.CommaToken:
          case ts.SyntaxKind.EqualsToken:
            return this.term(b.right);
          default:
            return null;
        }
      }
      case ts.SyntaxKind.TemplateExpression:
        return any((e as ts.TemplateExpression).templateSpans.map((s) => this.term(s.expression)));
      default:
        return null;
    }
  }

  /**
   * Tool, prompt and completion arguments come from the model, not the transport: a `sessionId`
   * argument is an application handle (a browser, a terminal), not the MCP session id.
   */
  private isToolArguments(receiver: ts.Expression): boolean {
    const r = skipOuter(receiver);
    if (ts.isPropertyAccessExpression(r) && r.name.text === 'arguments') return true;
    if (ts.isIdentifier(r)) {
      const decl = this.symbolAt(r)?.valueDeclaration;
      return !!decl && ts.isParameter(decl) && isToolArgumentsParameter(decl);
    }
    return false;
  }

  /** `x.sessionId` is a session id unless its declaration lives in a non-MCP package. */
  private isMcpSessionProperty(pa: ts.PropertyAccessExpression): boolean {
    const symbol = this.symbolAt(pa.name);
    const decl = symbol?.declarations?.[0];
    if (!decl) return true;
    const file = decl.getSourceFile().fileName;
    return !/[\\/]node_modules[\\/]/.test(file) || MCP_PACKAGE.test(file);
  }

  /** The value of a string literal, or of an identifier bound to a `const` string literal. */
  constantString(node: ts.Expression): string | undefined {
    const e = skipOuter(node);
    if (ts.isStringLiteralLike(e)) return e.text;
    if (ts.isIdentifier(e) || ts.isPropertyAccessExpression(e)) {
      const decl = this.symbolAt(ts.isPropertyAccessExpression(e) ? e.name : e)?.valueDeclaration;
      if (decl && (ts.isVariableDeclaration(decl) || ts.isPropertyAssignment(decl) || ts.isPropertyDeclaration(decl)) && decl.initializer) {
        const init = skipOuter(decl.initializer);
        if (ts.isStringLiteralLike(init)) return init.text;
      }
    }
    return undefined;
  }

  // ---------------------------------------------------------------- solving

  private evaluate(term: Term): boolean {
    if (term === 'src') return true;
    if ('sym' in term) return this.tainted.has(term.sym);
    if ('any' in term) return term.any.some((t) => this.evaluate(t));
    if ('call' in term) {
      if (this.extraSources.has(term.call)) return true;
      if (this.taintedReturns.size === 0) return false;
      // An unnamed function is only reached through a parameter it was passed for (`fn(extra.sessionId)`): a plain call.
      const name = calleeName(term.call);
      if (!this.taintedReturnNames.has(name) && !(this.taintedReturnNames.has(undefined) && ts.isIdentifier(skipOuter(term.call.expression)))) return false;
      return this.callees(term.call).some((fn) => this.taintedReturns.has(fn));
    }
    // property read: only resolve when a field of that name was ever tainted
    const name = ts.isPropertyAccessExpression(term.prop) ? term.prop.name.text : undefined;
    if (name === undefined || !this.taintedPropNames.has(name)) return false;
    return this.isSessionIdSymbol(this.symbolAt((term.prop as ts.PropertyAccessExpression).name));
  }

  private taint(symbol: ts.Symbol): boolean {
    if (this.tainted.has(symbol)) return false;
    this.tainted.add(symbol);
    if (symbol.flags & ts.SymbolFlags.Property) this.taintedPropNames.add(symbol.name);
    return true;
  }

  private solve(): void {
    for (const symbol of this.tainted) if (symbol.flags & ts.SymbolFlags.Property) this.taintedPropNames.add(symbol.name);
    const doneCalls = new Set<CallEdge>();
    const donePropEdges = new Set<number>();
    const doneBindings = new Set<number>();
    const doneLiterals = new Set<number>();
    // Bounded: each round taints at least one new symbol or function, and there are finitely many.
    for (let round = 0; round < 1000; round++) {
      let changed = false;
      for (const { target, term } of this.edges) {
        if (!this.tainted.has(target) && this.evaluate(term)) changed = this.taint(target) || changed;
      }
      this.propEdges.forEach(({ target, term }, i) => {
        if (donePropEdges.has(i) || !this.evaluate(term)) return;
        donePropEdges.add(i);
        const symbol = this.symbolAt(target.name);
        if (symbol) changed = this.taint(symbol) || changed;
      });
      this.literalEdges.forEach(({ prop, term }, i) => {
        if (doneLiterals.has(i) || !this.evaluate(term)) return;
        doneLiterals.add(i);
        const contextual = this.contextualProperty(prop);
        if (contextual) changed = this.taint(contextual) || changed;
      });
      this.bindingEdges.forEach(({ name, pattern, key }, i) => {
        if (doneBindings.has(i) || !this.taintedPropNames.has(key)) return;
        let prop: ts.Symbol | undefined;
        try {
          prop = this.checker.getNonNullableType(this.checker.getTypeAtLocation(pattern)).getProperty(key);
        } catch {
          prop = undefined;
        }
        if (!prop || !this.tainted.has(prop)) return;
        doneBindings.add(i);
        const symbol = this.symbolAt(name);
        if (symbol) changed = this.taint(symbol) || changed;
      });
      for (const { fn, term } of this.returns) {
        if (!this.taintedReturns.has(fn) && this.evaluate(term)) {
          this.taintedReturns.add(fn);
          this.taintedReturnNames.add(isFunctionLike(fn) ? functionName(fn) ?? methodName(fn) : undefined);
          changed = true;
        }
      }
      for (const edge of this.callEdges) {
        if (doneCalls.has(edge) || !this.evaluate(edge.term)) continue;
        doneCalls.add(edge);
        for (const fn of [...this.callees(edge.call), ...this.objectMemberCallees(edge.call)]) {
          const param = fn.parameters[edge.index];
          if (param && ts.isIdentifier(param.name) && !param.dotDotDotToken) {
            const symbol = this.symbolAt(param.name);
            if (symbol) changed = this.taint(symbol) || changed;
          }
        }
      }
      if (!changed) break;
    }
    this.solved = true;
  }

  /**
   * Adds calls whose results stand for a session (ids minted once per session by per-session code) and
   * extends the fixpoint from them.
   */
  addSources(calls: Iterable<ts.CallExpression>): void {
    let added = false;
    for (const call of calls) {
      if (this.extraSources.has(call)) continue;
      this.extraSources.add(call);
      added = true;
    }
    if (added) this.solve();
  }

  /**
   * Adds variables and functions whose values stand for a session (a function object made once per session,
   * see SessionScope `sessionHandles`) and extends the fixpoint from them.
   */
  addSourceSymbols(names: Iterable<ts.Identifier>): void {
    let added = false;
    for (const name of names) {
      const symbol = this.symbolAt(name);
      if (symbol) added = this.taint(symbol) || added;
    }
    if (added) this.solve();
  }

  /** Whether the fixpoint has been computed (always true after construction). */
  get isSolved(): boolean {
    return this.solved;
  }

  /** Files this flow was computed over. */
  get sourceFiles(): readonly ts.SourceFile[] {
    return this.files;
  }
}

/** The SDK's server classes (sdk-types.ts `SERVERS`), matched by declared name while walking. */
const SERVER_CLASS_NAMES = new Set(['McpServer', 'Server']);

/** The type references a declared return type names: `T`, and `T` inside `Promise<T>`. */
function returnTypeRefs(type: ts.TypeNode): ts.TypeReferenceNode[] {
  if (!ts.isTypeReferenceNode(type)) return [];
  const name = ts.isIdentifier(type.typeName) ? type.typeName.text : type.typeName.right.text;
  if (name === 'Promise' && type.typeArguments?.length === 1) return returnTypeRefs(type.typeArguments[0]!);
  return [type];
}

function returnTypeNames(type: ts.TypeNode): string[] {
  return returnTypeRefs(type).map((r) => (ts.isIdentifier(r.typeName) ? r.typeName.text : r.typeName.right.text));
}

function addTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** The bodies of a class's member named `name`: a method, or a field holding a function. */
function memberBodies(cls: ts.ClassLikeDeclaration, name: string): FunctionLike[] {
  const out: FunctionLike[] = [];
  for (const m of cls.members) {
    if (!m.name || propertyNameText(m.name) !== name) continue;
    if (ts.isMethodDeclaration(m) && m.body) out.push(m);
    else if (ts.isPropertyDeclaration(m) && m.initializer) {
      const init = skipOuter(m.initializer);
      if (ts.isArrowFunction(init) || ts.isFunctionExpression(init)) out.push(init);
    }
  }
  return out;
}

/** Registrations whose callback's first parameter is the model's arguments (SDK v1/v2 `McpServer`). */
const ARGUMENT_REGISTRARS = new Set(['registerTool', 'tool', 'registerPrompt', 'prompt']);

/** The first parameter of a tool or prompt callback: the arguments the model chose. */
export function isToolArgumentsParameter(param: ts.ParameterDeclaration): boolean {
  const fn = param.parent;
  if (!fn || !(ts.isArrowFunction(fn) || ts.isFunctionExpression(fn)) || fn.parameters[0] !== param) return false;
  const call = fn.parent;
  if (!call || !ts.isCallExpression(call) || call.arguments[call.arguments.length - 1] !== fn) return false;
  const name = calleeName(call);
  if (!name || !ARGUMENT_REGISTRARS.has(name)) return false;
  // (args, extra) => …: the first parameter is the arguments.
  if (fn.parameters.length >= 2) return true;
  // One parameter: the arguments only when the registration declares an input schema; otherwise it is `extra`.
  return call.arguments.slice(1, -1).some((arg) => {
    const e = skipOuter(arg);
    if (ts.isObjectLiteralExpression(e)) {
      return e.properties.some((p) => {
        const key = p.name && propertyNameText(p.name);
        return key === 'inputSchema' || key === 'argsSchema' || (ts.isPropertyAssignment(p) && /\bz\./.test(p.initializer.getText()));
      });
    }
    return !ts.isStringLiteralLike(e);
  });
}

function any(terms: Array<Term | null>): Term | null {
  const kept = terms.filter((t): t is Term => t !== null);
  if (kept.length === 0) return null;
  if (kept.includes('src')) return 'src';
  return kept.length === 1 ? kept[0]! : { any: kept };
}

/** The name of a method, getter or property-assigned function (`{ m() {} }`, `{ m: () => … }`), which is what a call spells. */
function methodName(fn: FunctionLike): string | undefined {
  const named = ts.isMethodDeclaration(fn) || ts.isGetAccessorDeclaration(fn) ? fn.name : ts.isPropertyAssignment(fn.parent) || ts.isPropertyDeclaration(fn.parent) ? fn.parent.name : undefined;
  return named ? propertyNameText(named) : undefined;
}

/** String-literal module specifiers of a file's imports, re-exports, `require()`s and `import()`s. */
function moduleSpecifiers(file: ts.SourceFile): ts.StringLiteralLike[] {
  const out: ts.StringLiteralLike[] = [];
  const dynamic = file.text.includes('require(') || file.text.includes('import(');
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteralLike(node.moduleSpecifier)) {
      out.push(node.moduleSpecifier);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference) && ts.isStringLiteralLike(node.moduleReference.expression)) {
      out.push(node.moduleReference.expression);
    } else if (
      dynamic &&
      ts.isCallExpression(node) &&
      (node.expression.kind === ts.SyntaxKind.ImportKeyword || (ts.isIdentifier(node.expression) && node.expression.text === 'require')) &&
      node.arguments[0] &&
      ts.isStringLiteralLike(node.arguments[0])
    ) {
      out.push(node.arguments[0]);
    }
    if (dynamic) ts.forEachChild(node, visit);
  };
  ts.forEachChild(file, visit);
  return out;
}
