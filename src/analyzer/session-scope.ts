/**
 * What runs once per session, and which objects live as long as one session.
 *
 * A session opens where the server constructs a sessionful transport (a `sessionIdGenerator` that
 * returns an id, or the legacy `SSEServerTransport`). The statements of the block that constructs it
 * (the `initialize` branch of a Streamable HTTP handler, the `GET /sse` handler), its
 * `onsessioninitialized` callback, and every project function they call, transitively (through
 * imports, methods, constructors, interface members and overrides), run once per session: the
 * *per-session code*. A helper that only builds the transport (`newSessionTransport()`) makes the block
 * of each of its call sites per-session code. Functions registered there as request handlers (tools,
 * resources, prompts, HTTP routes) run per request, not per session, and are not part of it.
 *
 * A *per-session object* is an instance of one of the project's classes created by per-session code
 * and kept beyond the statement that creates it (captured by a closure, passed on, stored, returned).
 * Its *session fields* are the fields written after construction: by its methods that something calls
 * outside the constructor, by callbacks and handlers it registers, or from outside the class
 * (`context.clientVersion = …` in `oninitialized`). A write that only clears the field (`undefined`,
 * `null`) does not count.
 */
import path from 'node:path';
import { ts } from 'ts-morph';
import { calleeName, enclosingFunction, isFunctionLike, isInside, lazyInitTarget, propertyNameText, returnedExpressions, skipOuter, type FunctionLike } from './ast.js';
import { handlerRegistration, isReplayedHandler } from './handlers.js';
import { isSdkFile, packageNameOf } from './sdk-types.js';
import type { SessionFlow } from './session-flow.js';

/** Hooks that run once per session (at its start or end), not per request. */
const SESSION_HOOKS = new Set(['oninitialized', 'onclose', 'onerror', 'onsessioninitialized', 'onsessionclosed']);
const MUTATORS = new Set(['set', 'add', 'push', 'delete', 'clear', 'splice', 'unshift', 'pop', 'shift', 'sort', 'reverse', 'fill']);
/** APIs that mint a random id (`node:crypto`, Web Crypto, `uuid`, `nanoid`, `ulid`, `cuid2`). */
const RANDOM_ID_APIS = new Set(['randomUUID', 'v4', 'uuidv4', 'nanoid', 'ulid', 'createId', 'cuid']);

function callsRandomIdApi(call: ts.CallExpression): boolean {
  const name = calleeName(call);
  return !!name && RANDOM_ID_APIS.has(name);
}
/** Bounds on the per-session call graph (functions visited). */
const MAX_FUNCTIONS = 2000;

export interface SessionField {
  cls: ts.ClassLikeDeclaration;
  /** The field's declaration name (or, in JavaScript, the first `this.x =` of the constructor). */
  node: ts.Node;
  name: string;
  /** Writes after construction. */
  writes: ts.Node[];
  /** Every write runs while handling a request that handshake replay re-sends (`initialize`, `logging/setLevel`, …). */
  replayed: boolean;
}

export class SessionScope {
  /** Functions whose bodies run once per session. */
  readonly functions = new Set<FunctionLike>();
  /** Blocks that run once per session (where a sessionful transport is built). */
  readonly regions: ts.Node[] = [];
  /** Classes instantiated by per-session code and kept, with where. */
  readonly classes = new Map<ts.ClassLikeDeclaration, ts.NewExpression[]>();
  /** Fresh random ids minted by per-session code (`scope: randomUUID()`): each stands for its session. */
  readonly sessionIds: ts.CallExpression[] = [];
  /**
   * Named functions declared in per-session code (`function notify(uri) { server.sendResourceUpdated(…) }`
   * inside a per-session server factory): each session has its own function object, so one passed on as a
   * value identifies its session as an id would (`subscriptions.subscribe(notify, uri)` keys by it).
   */
  readonly sessionHandles = new Set<ts.Identifier>();
  private readonly projectFiles: Set<ts.SourceFile>;
  private readonly fieldCache = new Map<ts.ClassLikeDeclaration, SessionField[]>();
  private readonly randomIdMemo = new Map<FunctionLike, boolean>();
  #externalWrites: Map<string, ts.Node[]> | undefined;

  constructor(private readonly flow: SessionFlow) {
    this.projectFiles = new Set(flow.sourceFiles);
    if (flow.isStateful) {
      this.compute();
      this.collectServerHandles();
    }
  }

  /**
   * True when `node` runs once per session: in per-session code, not inside a request handler nested
   * there. The session-opening block of a request handler (the `initialize` branch of `POST /mcp`)
   * is per-session code although the handler around it runs per request.
   */
  isPerSessionCode(node: ts.Node): boolean {
    for (let fn = enclosingFunction(node); fn; fn = enclosingFunction(fn)) {
      if (this.functions.has(fn)) return true;
      if (this.regions.some((r) => isInside(node, r) && isInside(r, fn!))) return true;
      if (runsPerRequest(fn)) return false;
      if (this.regions.some((r) => isInside(fn!, r))) return true;
    }
    return this.regions.some((r) => isInside(node, r));
  }

  /** The class of a `new` expression when it is a project class (not the SDK's, not a library's). */
  projectClassOf(expr: ts.NewExpression): ts.ClassLikeDeclaration | undefined {
    const callee = skipOuter(expr.expression);
    const symbol = this.flow.symbolAt(ts.isPropertyAccessExpression(callee) ? callee.name : callee);
    const cls = symbol?.declarations?.find((d): d is ts.ClassDeclaration => ts.isClassDeclaration(d) || ts.isClassExpression(d));
    if (!cls || !this.projectFiles.has(cls.getSourceFile())) return undefined;
    if (cls.name && this.flow.sdk.sdkNameOf(this.flow.symbolAt(cls.name))) return undefined;
    return cls;
  }

  /** A member of one of the SDK's own classes (analyzing the SDK's repository): the SDK's internals, which replay covers. */
  private isSdkMember(fn: FunctionLike): boolean {
    const cls = ts.findAncestor(fn, ts.isClassLike);
    return !!cls?.name && !!this.flow.sdk.sdkNameOf(this.flow.symbolAt(cls.name)) && this.flow.sdk.isSdkDeclaration(cls);
  }

  private compute(): void {
    const sites: ts.Node[] = [];
    for (const prop of this.flow.statefulGenerators) {
      const options = prop.parent;
      sites.push(ts.isObjectLiteralExpression(options) && ts.isNewExpression(options.parent) ? options.parent : prop);
    }
    sites.push(...this.flow.sseTransports);
    const openers = new Set<FunctionLike>();
    const addRegion = (site: ts.Node, level: number): void => {
      const region = enclosingBlock(site);
      const owner = region.parent;
      // The whole body of a helper that is not itself a handler: its callers' blocks open the session.
      if (owner && isFunctionLike(owner) && owner.body === region && !handlerRegistration(owner) && level < 2) {
        if (openers.has(owner)) return;
        openers.add(owner);
        this.functions.add(owner);
        const callers = this.flow.callSitesOf(owner);
        for (const call of callers) addRegion(call, level + 1);
        if (callers.length > 0) return;
      }
      if (!this.regions.includes(region)) this.regions.push(region);
    };
    for (const site of sites) addRegion(site, 0);
    // The SDK's own packages (analyzing its repository) are its business, unless the server is one of them (its examples).
    const own = new Set(this.regions.map((r) => packageNameOf(path.dirname(r.getSourceFile().fileName))));
    const foreignSdk = (fn: FunctionLike): boolean => {
      const file = fn.getSourceFile().fileName;
      return isSdkFile(file) && !own.has(packageNameOf(path.dirname(file)));
    };
    const queue: ts.Node[] = [...this.regions, ...this.functions];
    while (queue.length > 0 && this.functions.size < MAX_FUNCTIONS) {
      const root = queue.pop()!;
      const visit = (n: ts.Node): void => {
        if (n !== root && isFunctionLike(n)) this.noteHandle(n);
        if (n !== root && isFunctionLike(n) && !runsOnceHere(n)) return;
        // Kept beyond the call (an option, a field, an argument): it labels what the session owns.
        // A helper that returns the id (`getRandomUUID()`) is not the session's id: its per-session call site is.
        if (ts.isCallExpression(n) && this.mintsId(n) && isRetained(this.flow, n) && !isReturned(n)) this.sessionIds.push(n);
        // A value made lazily for a longer-lived holder (`if (!store) store = createStore()`) is made once, not per session.
        if ((ts.isCallExpression(n) || ts.isNewExpression(n)) && this.isLazyForOuterHolder(n, root)) return;
        if (ts.isCallExpression(n) || ts.isNewExpression(n)) {
          for (const fn of this.flow.callees(n)) {
            if (!fn.body || this.functions.has(fn) || !this.projectFiles.has(fn.getSourceFile()) || this.isSdkMember(fn) || foreignSdk(fn)) continue;
            this.functions.add(fn);
            queue.push(fn);
          }
          if (ts.isNewExpression(n)) {
            const cls = this.projectClassOf(n);
            if (cls && !isSingleton(this.flow, n) && (isRetained(this.flow, n) || registersHandlers(cls))) {
              const list = this.classes.get(cls);
              if (list) list.push(n);
              else this.classes.set(cls, [n]);
              // Field initializers run at construction too.
              for (const m of cls.members) if (ts.isPropertyDeclaration(m) && m.initializer && !hasStatic(m)) queue.push(m.initializer);
            }
          }
        }
        ts.forEachChild(n, visit);
      };
      visit(root);
    }
  }

  /**
   * Named functions a server factory declares that use the server it makes (`function notify(uri) {
   * server.sendResourceUpdated({ uri }) }`): the SDK binds a server to one transport, so in a sessionful
   * server each such function object belongs to one session.
   */
  private collectServerHandles(): void {
    for (const made of this.flow.serverConstructions) {
      const factory = enclosingFunction(made);
      const holder = made.parent;
      if (!factory || !factory.body || !ts.isVariableDeclaration(holder) || !ts.isIdentifier(holder.name) || this.flow.sdk.kindOfValue(made) !== 'server') continue;
      const server = this.flow.symbolAt(holder.name);
      const visit = (n: ts.Node): void => {
        if (isFunctionLike(n) && n !== factory && usesSymbol(this.flow, n, server)) this.noteHandle(n);
        ts.forEachChild(n, visit);
      };
      visit(factory.body);
    }
  }

  /** A function declared by name in per-session code and used as a value somewhere (passed, stored): a session handle. */
  private noteHandle(fn: FunctionLike): void {
    let name: ts.Identifier | undefined;
    if (ts.isFunctionDeclaration(fn)) name = fn.name;
    else if ((ts.isArrowFunction(fn) || ts.isFunctionExpression(fn)) && ts.isVariableDeclaration(fn.parent) && fn.parent.initializer === fn && ts.isIdentifier(fn.parent.name)) name = fn.parent.name;
    if (name && !ts.isSourceFile(fn.parent) && !this.sessionHandles.has(name)) this.sessionHandles.add(name);
  }

  /** `value` lazily initializes a variable declared outside per-session code (a closure or module variable that outlives the session). */
  private isLazyForOuterHolder(value: ts.Expression, root: ts.Node): boolean {
    const target = lazyInitTarget(value);
    const decl = target && this.flow.symbolAt(target)?.valueDeclaration;
    return !!decl && !isInside(decl, root) && !this.isPerSessionCode(decl);
  }

  /** A call that returns a fresh random id: a random-id API, or a project function that returns one. */
  private mintsId(call: ts.CallExpression): boolean {
    return callsRandomIdApi(call) || this.flow.callees(call).some((fn) => this.projectFiles.has(fn.getSourceFile()) && this.returnsRandomId(fn));
  }

  /** A function that returns the result of a random-id API (cached: a helper is called from many places). */
  private returnsRandomId(fn: FunctionLike): boolean {
    let v = this.randomIdMemo.get(fn);
    if (v === undefined) {
      v = returnedExpressions(fn).some((e) => ts.isCallExpression(skipOuter(e)) && callsRandomIdApi(skipOuter(e) as ts.CallExpression));
      this.randomIdMemo.set(fn, v);
    }
    return v;
  }

  /** The fields of a per-session class that are written after construction (cached). */
  sessionFields(cls: ts.ClassLikeDeclaration): SessionField[] {
    const cached = this.fieldCache.get(cls);
    if (cached) return cached;
    const byName = new Map<string, SessionField>();
    const ctor = cls.members.find(ts.isConstructorDeclaration);
    const declared = new Map<string, ts.Node>();
    for (const m of cls.members) {
      if (ts.isPropertyDeclaration(m) && !hasStatic(m) && m.name) {
        const t = propertyNameText(m.name);
        if (t && !(m.initializer && isFunctionLike(skipOuter(m.initializer)))) declared.set(t, m.name);
      }
    }
    for (const p of ctor?.parameters ?? []) if (ts.isParameterPropertyDeclaration(p, ctor!) && ts.isIdentifier(p.name)) declared.set(p.name.text, p.name);
    const note = (name: string, write: ts.Node, anchor: ts.Node): void => {
      const field = byName.get(name) ?? { cls, node: declared.get(name) ?? anchor, name, writes: [], replayed: true };
      field.writes.push(write);
      field.replayed &&= this.isReplayedWrite(write, cls);
      byName.set(name, field);
    };
    const jsFields = new Map<string, ts.Node>();
    const visit = (n: ts.Node, inInit: boolean): void => {
      if (n !== cls && ts.isClassLike(n)) return;
      const write = thisFieldWrite(n);
      if (write) {
        if (inInit && !declared.has(write.name) && !jsFields.has(write.name)) jsFields.set(write.name, write.anchor);
        if (!inInit && !write.clears && this.runsAfterConstruction(n, cls)) note(write.name, n, jsFields.get(write.name) ?? write.anchor);
      }
      // Plain constructor statements initialize; functions nested in the constructor run later.
      ts.forEachChild(n, (c) => visit(c, inInit && !isFunctionLike(c)));
    };
    for (const m of cls.members) {
      if (hasStatic(m)) continue;
      visit(m, ts.isConstructorDeclaration(m));
    }
    // Writes from outside the class (`context.clientVersion = …`).
    for (const [name, anchor] of [...declared, ...jsFields]) {
      for (const w of this.externalWrites().get(name) ?? []) {
        if (isInside(w, cls)) continue;
        const target = skipOuter((w as ts.BinaryExpression).left) as ts.PropertyAccessExpression;
        const decl = this.flow.symbolAt(target.name)?.declarations?.[0];
        if (!decl || !isInside(decl, cls)) continue;
        if (isUndefinedValue((w as ts.BinaryExpression).right)) continue;
        note(name, w, anchor);
      }
    }
    for (const [name, anchor] of jsFields) {
      const f = byName.get(name);
      if (f && f.node !== anchor && !declared.has(name)) f.node = anchor;
    }
    const out = [...byName.values()];
    this.fieldCache.set(cls, out);
    return out;
  }

  /** A write inside a method only counts when the method runs after construction (something calls it, outside the constructor). */
  private runsAfterConstruction(write: ts.Node, cls: ts.ClassLikeDeclaration, depth = 0): boolean {
    const fn = enclosingFunction(write);
    if (!fn || !isInside(fn, cls)) return ancestorIsSetter(write, cls);
    const member = fn.parent === cls ? fn : undefined;
    // A callback or handler nested in a member runs later.
    if (!member) return true;
    if (ts.isConstructorDeclaration(member)) return false;
    if (depth > 2) return true;
    const sites = this.flow.callSitesOf(member);
    return sites.some((site) => {
      const caller = enclosingFunction(site);
      if (!caller) return true;
      if (caller.parent === cls && ts.isConstructorDeclaration(caller)) return false;
      if (caller.parent === cls && isMemberOf(caller, cls)) return this.runsAfterConstruction(site, cls, depth + 1);
      return true;
    });
  }

  /** Every write happens while handling a request that handshake replay re-sends. */
  private isReplayedWrite(write: ts.Node, cls: ts.ClassLikeDeclaration, depth = 0): boolean {
    for (let fn = enclosingFunction(write); fn; fn = enclosingFunction(fn)) {
      const reg = handlerRegistration(fn);
      if (reg) return isReplayedHandler(reg);
      if (fn.parent === cls && depth < 2) {
        const sites = this.flow.callSitesOf(fn);
        return sites.length > 0 && sites.every((s) => this.isReplayedWrite(s, cls, depth + 1));
      }
    }
    return false;
  }

  /** `x.name = value` in the program (not `this.name`), by property name. */
  private externalWrites(): Map<string, ts.Node[]> {
    if (this.#externalWrites) return this.#externalWrites;
    const out = new Map<string, ts.Node[]>();
    const names = new Set<string>();
    for (const cls of this.classes.keys()) for (const m of cls.members) if (m.name) names.add(propertyNameText(m.name as ts.PropertyName) ?? '');
    if (names.size > 0) {
      const visit = (n: ts.Node): void => {
        if (ts.isBinaryExpression(n) && n.operatorToken.kind === ts.SyntaxKind.EqualsToken) {
          const left = skipOuter(n.left);
          if (ts.isPropertyAccessExpression(left) && left.expression.kind !== ts.SyntaxKind.ThisKeyword && names.has(left.name.text)) {
            const list = out.get(left.name.text) ?? [];
            list.push(n);
            out.set(left.name.text, list);
          }
        }
        ts.forEachChild(n, visit);
      };
      for (const file of this.flow.sourceFiles) visit(file);
    }
    this.#externalWrites = out;
    return out;
  }
}

const scopes = new WeakMap<SessionFlow, SessionScope>();

/** The per-session scope of a program (computed once per {@link SessionFlow}). */
export function sessionScope(flow: SessionFlow): SessionScope {
  let scope = scopes.get(flow);
  if (!scope) {
    scope = new SessionScope(flow);
    scopes.set(flow, scope);
  }
  return scope;
}

/**
 * A function nested in per-session code that runs as part of it: invoked in place (an IIFE), a
 * callback passed to a call (`new Promise(executor)`, `list.forEach(fn)`) that is not a request
 * handler, or a once-per-session hook (`onsessioninitialized`, `oninitialized`, `onclose`). Closures
 * that are stored or returned for later calls run per request, not here.
 */
function runsOnceHere(fn: ts.Node): boolean {
  let n: ts.Node = fn;
  while (n.parent && ts.isParenthesizedExpression(n.parent)) n = n.parent;
  const parent = n.parent;
  if (!parent) return false;
  if (ts.isCallExpression(parent) && parent.expression === n) return true;
  if ((ts.isCallExpression(parent) || ts.isNewExpression(parent)) && parent.arguments?.includes(n as ts.Expression)) return !runsPerRequest(fn);
  const hook = ts.isPropertyAssignment(parent) ? propertyNameText(parent.name) : ts.isBinaryExpression(parent) && ts.isPropertyAccessExpression(parent.left) ? parent.left.name.text : undefined;
  return hook !== undefined && SESSION_HOOKS.has(hook);
}

/** A function registered to run per request (a tool, resource, prompt or request handler, an HTTP route). */
export function runsPerRequest(fn: ts.Node): boolean {
  const reg = handlerRegistration(fn);
  return !!reg && !SESSION_HOOKS.has(reg.registrar);
}

function enclosingBlock(node: ts.Node): ts.Node {
  let n: ts.Node = node;
  while (n.parent && !ts.isBlock(n.parent) && !ts.isSourceFile(n.parent) && !ts.isCaseClause(n.parent) && !(isFunctionLike(n.parent) && n.parent.body === n)) n = n.parent;
  if (!n.parent) return n;
  return isFunctionLike(n.parent) && n.parent.body === n ? n : n.parent;
}

function hasStatic(m: ts.ClassElement | ts.Node): boolean {
  return ts.canHaveModifiers(m) && !!ts.getModifiers(m)?.some((x) => x.kind === ts.SyntaxKind.StaticKeyword);
}

/** The class registers request handlers or hooks (on a server it owns): its instance lives as long as they do. */
function registersHandlers(cls: ts.ClassLikeDeclaration): boolean {
  let found = false;
  const visit = (n: ts.Node): void => {
    if (found) return;
    if (isFunctionLike(n) && n.parent !== cls && handlerRegistration(n)) found = true;
    else ts.forEachChild(n, visit);
  };
  for (const m of cls.members) visit(m);
  return found;
}

function ancestorIsSetter(node: ts.Node, cls: ts.ClassLikeDeclaration): boolean {
  for (let n: ts.Node | undefined = node.parent; n && n !== cls; n = n.parent) if (ts.isSetAccessorDeclaration(n)) return true;
  return false;
}

function isMemberOf(fn: FunctionLike, cls: ts.ClassLikeDeclaration): boolean {
  return fn.parent === cls;
}

export function isUndefinedValue(e: ts.Expression): boolean {
  const v = skipOuter(e);
  return (ts.isIdentifier(v) && v.text === 'undefined') || v.kind === ts.SyntaxKind.NullKeyword || ts.isVoidExpression(v);
}

/** `this.x = v`, `this.#x ??= v`, `this.x++`, `this.x.push(v)`, `this.x[k] = v`, `delete this.x[k]`: the field written. */
function thisFieldWrite(n: ts.Node): { name: string; anchor: ts.Node; clears: boolean } | undefined {
  const field = (e: ts.Expression): { name: string; anchor: ts.Node } | undefined => {
    let x = skipOuter(e);
    while (ts.isElementAccessExpression(x)) x = skipOuter(x.expression);
    if (ts.isPropertyAccessExpression(x) && x.expression.kind === ts.SyntaxKind.ThisKeyword) {
      return { name: x.name.text, anchor: x.name };
    }
    return undefined;
  };
  if (ts.isBinaryExpression(n) && n.operatorToken.kind >= ts.SyntaxKind.FirstAssignment && n.operatorToken.kind <= ts.SyntaxKind.LastAssignment) {
    const f = field(n.left);
    const direct = ts.isPropertyAccessExpression(skipOuter(n.left));
    return f && { ...f, clears: direct && n.operatorToken.kind === ts.SyntaxKind.EqualsToken && isUndefinedValue(n.right) };
  }
  if ((ts.isPrefixUnaryExpression(n) || ts.isPostfixUnaryExpression(n)) && (n.operator === ts.SyntaxKind.PlusPlusToken || n.operator === ts.SyntaxKind.MinusMinusToken)) {
    const f = field(n.operand);
    return f && { ...f, clears: false };
  }
  if (ts.isDeleteExpression(n)) {
    const f = field(n.expression);
    return f && { ...f, clears: false };
  }
  if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression) && MUTATORS.has(n.expression.name.text)) {
    const f = field(n.expression.expression);
    return f && { ...f, clears: false };
  }
  return undefined;
}

/**
 * The object a `new` creates is kept beyond its statement: assigned to a property or stored, passed
 * to a call, returned, or held in a variable that is itself captured, passed on, stored or returned.
 */
export function isRetained(flow: SessionFlow, expr: ts.Expression): boolean {
  let n: ts.Node = expr;
  while (
    n.parent &&
    (ts.isParenthesizedExpression(n.parent) ||
      ts.isAsExpression(n.parent) ||
      ts.isAwaitExpression(n.parent) ||
      ts.isNonNullExpression(n.parent) ||
      ts.isSatisfiesExpression(n.parent) ||
      (ts.isConditionalExpression(n.parent) && n.parent.condition !== n) ||
      (ts.isBinaryExpression(n.parent) && (n.parent.operatorToken.kind === ts.SyntaxKind.QuestionQuestionToken || n.parent.operatorToken.kind === ts.SyntaxKind.BarBarToken)))
  ) {
    n = n.parent;
  }
  const parent = n.parent;
  if (!parent) return false;
  if (ts.isVariableDeclaration(parent) && parent.initializer === n && ts.isIdentifier(parent.name)) return variableEscapes(flow, parent.name);
  if (ts.isBinaryExpression(parent) && parent.right === n) {
    const left = skipOuter(parent.left);
    return ts.isIdentifier(left) ? variableEscapes(flow, left) : true;
  }
  return (
    ((ts.isCallExpression(parent) || ts.isNewExpression(parent)) && parent.arguments?.includes(n as ts.Expression) === true) ||
    ts.isPropertyAssignment(parent) ||
    ts.isArrayLiteralExpression(parent) ||
    ts.isReturnStatement(parent) ||
    (ts.isArrowFunction(parent) && parent.body === n) ||
    ts.isPropertyDeclaration(parent)
  );
}

/** `Logger.instance = new Logger()`, `cache ??= new Client()`: one object for the process, made on first use. */
function isSingleton(flow: SessionFlow, expr: ts.Expression): boolean {
  let n: ts.Node = expr;
  while (n.parent && (ts.isParenthesizedExpression(n.parent) || ts.isAsExpression(n.parent))) n = n.parent;
  const parent = n.parent;
  if (!parent || !ts.isBinaryExpression(parent) || parent.right !== n) return false;
  const left = skipOuter(parent.left);
  const decl = flow.symbolAt(ts.isPropertyAccessExpression(left) ? left.name : left)?.valueDeclaration;
  if (!decl) return false;
  if (ts.isPropertyDeclaration(decl)) return hasStatic(decl);
  return ts.isVariableDeclaration(decl) && !enclosingFunction(decl);
}

function isReturned(expr: ts.Expression): boolean {
  let n: ts.Node = expr;
  while (n.parent && (ts.isParenthesizedExpression(n.parent) || ts.isAsExpression(n.parent) || ts.isAwaitExpression(n.parent) || ts.isConditionalExpression(n.parent) || ts.isBinaryExpression(n.parent))) n = n.parent;
  return !!n.parent && (ts.isReturnStatement(n.parent) || (ts.isArrowFunction(n.parent) && n.parent.body === n));
}

function variableEscapes(flow: SessionFlow, name: ts.Identifier): boolean {
  const symbol = flow.symbolAt(name);
  const decl = symbol?.valueDeclaration;
  if (!symbol || !decl) return false;
  const scope = enclosingFunction(decl) ?? decl.getSourceFile();
  if (ts.isSourceFile(scope)) return true; // module level: lives as long as the process
  let escapes = false;
  const visit = (n: ts.Node): void => {
    if (escapes) return;
    const refSymbol = ts.isIdentifier(n) && ts.isShorthandPropertyAssignment(n.parent) && n.parent.name === n ? flow.checker.getShorthandAssignmentValueSymbol(n.parent) : ts.isIdentifier(n) ? flow.symbolAt(n) : undefined;
    if (ts.isIdentifier(n) && n !== name && n.text === name.text && refSymbol === symbol) {
      const fn = enclosingFunction(n);
      if (fn && fn !== scope) escapes = true; // captured by a closure
      else {
        let p: ts.Node = n;
        while (p.parent && (ts.isParenthesizedExpression(p.parent) || ts.isAsExpression(p.parent) || ts.isNonNullExpression(p.parent))) p = p.parent;
        const parent = p.parent;
        if (
          ((ts.isCallExpression(parent) || ts.isNewExpression(parent)) && parent.arguments?.includes(p as ts.Expression)) ||
          (ts.isBinaryExpression(parent) && parent.right === p && parent.operatorToken.kind === ts.SyntaxKind.EqualsToken) ||
          ts.isPropertyAssignment(parent) ||
          ts.isShorthandPropertyAssignment(parent) ||
          ts.isArrayLiteralExpression(parent) ||
          ts.isReturnStatement(parent) ||
          ts.isSpreadElement(parent)
        ) {
          escapes = true;
        }
      }
    }
    ts.forEachChild(n, visit);
  };
  visit(scope);
  return escapes;
}

/** `fn`'s body refers to `symbol`. */
function usesSymbol(flow: SessionFlow, fn: FunctionLike, symbol: ts.Symbol | undefined): boolean {
  if (!symbol || !fn.body) return false;
  let found = false;
  const visit = (n: ts.Node): void => {
    if (found) return;
    if (ts.isIdentifier(n) && n.text === symbol.name && flow.symbolAt(n) === symbol) found = true;
    else ts.forEachChild(n, visit);
  };
  visit(fn.body);
  return found;
}
