/**
 * Process state written by requests: values reachable from module scope or from a singleton that the
 * code of a registered handler writes.
 *
 * Roots (the *holders*) are module-level variables, static class fields, and the objects they hold:
 * a module-level instance, a `static instance` returned by `getInstance()`, an object passed down to
 * handlers through parameters. Writes are assignments, mutations of built-in collections (Array, Map,
 * Set, WeakMap, WeakSet, by declared or inferred type), and calls of the holder's own methods that
 * write its fields (`thinkingServer.processThought(args)` pushing to `this.thoughtHistory`). Only code
 * reachable from a registered handler counts (SDK v1/v2 `registerTool`/`tool`/`registerResource`/
 * `registerPrompt`/`setRequestHandler`/`setNotificationHandler`, `on*` hooks, HTTP routes), followed
 * through calls into functions and methods of the analyzed program, across files.
 *
 * A write is process state only when what it writes comes from the session: a handler's parameters
 * (the request, the tool arguments, `extra`), values derived from them, results of the SDK's calls to
 * the client (`listRoots()`, `getClientCapabilities()`), an object built by the request
 * (`this` in a constructor a handler runs), or the held value itself (a toggle `x = !x`). Not process
 * state: resets to `undefined`/`null`, numbers (counters, metrics, timestamps; a counter is state only when
 * a condition on request data decides whether it counts and handler code reads it back), lazily created or
 * refreshed shared values built from process-level inputs (`if (!pool) pool = new Pool(env)`,
 * a token or rates fetched from a fixed URL), memoizing caches (the writing function reads the same key and returns
 * what it read), and external stores (their methods are not the program's).
 *
 * One more kind of state outlives the request without living in memory: a file at a path the server
 * fixes (a module constant, a singleton's field) that handler code writes (`fs.writeFile`,
 * `fs.rename`, …) and also reads back. It is on this replica's disk only.
 */
import { ts } from 'ts-morph';
import type { Dependency } from './bundle.js';
import { DiSingletons, importsDiPackage } from './di-singletons.js';
import { enclosingHandler, handlerRegistration, isHandshakeHandler, isModuleLevel, isReplayedHandler } from './handlers.js';
import { sessionScope } from './session-scope.js';
import { addCallersByName } from './ast.js';
import { calleeName, enclosingFunction, functionName, isFunctionLike, propertyNameText, returnedExpressions, skipOuter, type FunctionLike, type SessionFlow } from './session-flow.js';
import { frameworkHandler, programImports } from './framework-handlers.js';
import { FunctionValues } from './function-values.js';
import { RequestScoped } from './request-scoped.js';

/** Where process state is held: a module-level variable or a static field (its declaration's name node). */
export interface Holder {
  node: ts.Node;
  name: string;
}

export interface ProcessStateWrite {
  holder: Holder;
  /** The field of the held object written by one of its methods (a class property's name node), if any. */
  field?: Holder;
  /** The write (assignment, mutating call, file write). */
  node: ts.Node;
  /** `file`: a write to a file on this replica's disk at a path the holder fixes. */
  kind: 'memory' | 'file';
  /** The registration whose handler reaches the write. */
  registrar: string;
  /** True when the reaching handler is re-run by handshake replay (`initialize`, `logging/setLevel`, `resources/subscribe`). */
  replayed: boolean;
}

interface Context {
  fn: FunctionLike;
  /** When `fn`'s return value is being judged for one call: that call and its caller's context (binds `fn`'s parameters). */
  call?: { site: ts.CallExpression; caller: Context };
  /** What `this` is in `fn` when it was reached through a call on a holder (`holder.method()`). */
  thisHolder?: Holder;
  registrar: string;
  replayed: boolean;
}

interface Target {
  holder: Holder;
  field?: Holder;
}

/** A place handler code writes (or, for files, reads) through a holder; judged once reachability is known. */
interface Candidate {
  kind: 'assign' | 'mutate' | 'count' | 'file-write' | 'file-read';
  target: Target;
  node: ts.Node;
  ctx: Context;
}

const COLLECTION_TYPES = new Set(['Array', 'Map', 'Set', 'WeakMap', 'WeakSet']);
const ADDERS = new Set(['push', 'unshift', 'set', 'add', 'splice', 'fill', 'copyWithin']);
/** Mutators that add an entry (not the removals `splice` also does). */
const GROWERS = new Set(['push', 'unshift', 'set', 'add']);
/** Node's file-system writes and reads (`fs`, `fs/promises`, `node:` prefixed), by method. */
const FS_WRITES = new Set(['writeFile', 'writeFileSync', 'appendFile', 'appendFileSync', 'rename', 'renameSync', 'copyFile', 'copyFileSync', 'createWriteStream']);
const FS_READS = new Set(['readFile', 'readFileSync', 'createReadStream']);
const FS_MODULE = /^(node:)?fs(\/promises)?$/;
const MCP_PACKAGE = /[\\/]node_modules[\\/]@modelcontextprotocol[\\/]/;
/** Framework base classes whose method the framework calls per request (mcp-framework's tools, resources, prompts). */
const FRAMEWORK_HANDLERS = new Map([['MCPTool', 'execute'], ['MCPResource', 'read'], ['MCPPrompt', 'generateMessages']]);
const FRAMEWORK_PACKAGES = /^mcp-framework(\/|$)/;
/** Platform id generators (node:crypto, Web Crypto): a key made with one is new to this request. */
const ID_MINTERS = new Set(['randomUUID', 'randomBytes']);
/** Events that end a request or its response (node:http, express, fastify raw objects). */
const REQUEST_END_EVENTS = new Set(['close', 'finish', 'end']);
/** Client-side SDK code: the `Client` of SDK v1/v2 and MCP Apps (`ext-apps`), which run in the host, not in a server. */
const CLIENT_SIDE_PATH = /[\\/](client|ext-apps)[\\/]/;
const CLIENT_SIDE_SPECIFIER = /^@modelcontextprotocol\/(client|sdk\/client|ext-apps)\b/;
/** The SDK `Server`'s accessors for the client's `initialize` parameters and roots (v1 and v2). */
const CLIENT_ACCESSORS = new Set(['getClientCapabilities', 'getClientVersion', 'listRoots']);
const MAX_DEPTH = 6;
/** Node's child-process starters and the module they come from; writes to an upstream peer. */
const CHILD_SPAWNERS = new Set(['spawn', 'fork']);
const CHILD_PROCESS_MODULE = /^(node:)?child_process$/;
const UPSTREAM_WRITES = new Set(['write', 'send']);

/**
 * Collects handlers and call sites during the engine's walk ({@link visit}), then computes the process
 * state that requests write ({@link writes}).
 */
export class ProcessStateIndex {
  private readonly handlers = new Map<FunctionLike, Registration>();
  /** Calls reached from handlers, by the function they call (also through aliases the checker cannot name). */
  private readonly sites = new Map<FunctionLike, ts.CallExpression[]>();
  private readonly callsByName = new Map<string, ts.CallExpression[]>();
  private readonly transports = { stdio: false, http: false };
  private readonly reached = new Map<FunctionLike, Set<string>>();
  private readonly requestMemo = new Map<ts.Node, boolean>();
  private readonly propertyValues = new Map<ts.Symbol, ts.Expression[]>();
  private readonly calleeMemo = new Map<ts.CallExpression, FunctionLike[]>();
  /** Names of the program's functions and methods: a method call by another name (`res.json()`) cannot reach them. */
  private readonly programFunctionNames = new Set<string>();
  private readonly programFunctions: FunctionLike[] = [];
  /** The packages the program imports (computed on first use), which gate the framework-handler checks. */
  private imports: Set<string> | undefined;
  /** Names of functions that may write outside themselves, directly or through the functions they call (by name). */
  private writerNames = new Set<string>();
  /** Module-level holders found written with session data (their symbols). */
  private readonly sessionHolders = new Set<ts.Symbol | undefined>();
  #writes: ProcessStateWrite[] | undefined;
  private readonly upstreamMemo = new Map<ts.VariableDeclaration, boolean>();
  /** Singletons of dependency-injection containers (`container.resolve(Store)`), which are holders too. */
  private readonly di: DiSingletons;
  #usesDi: boolean | undefined;
  /** Functions held by variables, parameters and definition objects (handlers made by factories). */
  private readonly values: FunctionValues;
  /** Registrar arguments that are not function literals (`registerTool(name, cfg, handler)`): resolved in {@link writes}. */
  private readonly registeredValues: Array<{ arg: ts.Expression; reg: Registration }> = [];

  constructor(
    private readonly flow: SessionFlow,
    /** The analyzed program's own code (not declaration files, not bundled third-party modules). */
    private readonly isProgramCode: (node: ts.Node) => boolean,
    /** The package whose bundled module holds a node (see `bundle.ts`); absent outside bundles. */
    private readonly dependencyAt: (node: ts.Node) => Dependency | undefined = () => undefined,
  ) {
    this.di = new DiSingletons({
      symbolAt: (n) => this.flow.symbolAt(n),
      importedFrom: (id, accept) => this.importedFrom(id, 0, accept),
      callsNamed: (name) => this.callsByName.get(name) ?? [],
    });
    this.values = new FunctionValues({
      checker: this.flow.checker,
      symbolAt: (n) => this.flow.symbolAt(n),
      callees: (call) => this.flow.callees(call),
      callSites: (fn) => [...new Set([...this.flow.callSitesOf(fn), ...(this.sites.get(fn) ?? [])])],
      isProgramCode: (n) => this.isProgramCode(n),
    });
  }

  /** Called for every node of every analyzed file. */
  visit(node: ts.Node): void {
    if (ts.isBinaryExpression(node)) {
      // `Recorder.instance = new Recorder()`: values assigned to properties, for untyped JavaScript holders.
      const left = skipOuter(node.left);
      if (node.operatorToken.kind === ts.SyntaxKind.EqualsToken && ts.isPropertyAccessExpression(left) && ts.isNewExpression(skipOuter(node.right))) {
        const symbol = this.flow.symbolAt(left.name);
        if (symbol) this.propertyValues.set(symbol, [...(this.propertyValues.get(symbol) ?? []), node.right]);
      }
      return;
    }
    if (isFunctionLike(node) && node.body) {
      const name = functionName(node) ?? memberName(node);
      if (name) this.programFunctionNames.add(name);
      if (this.isProgramCode(node)) this.programFunctions.push(node);
      const found = this.isProgramCode(node) ? registrationThroughWrappers(node) : undefined;
      // Handlers an MCP client registers (for sampling, elicitation, roots) run in the client, not in a server.
      if (found && !this.isClientRegistration(found.call ?? node.parent)) this.handlers.set(node, found.reg);
      else if (ts.isMethodDeclaration(node) && this.isProgramCode(node) && this.isFrameworkHandler(node)) this.handlers.set(node, { registrar: memberName(node)! });
      else if (!found && this.isProgramCode(node)) {
        // fastmcp tool objects, mcp-use definitions, xmcp's file-routed tools (src/analyzer/framework-handlers.ts).
        this.imports ??= programImports(this.flow.sourceFiles);
        const framework = frameworkHandler(node, this.flow.checker, this.imports);
        if (framework) this.handlers.set(node, { registrar: framework.registrar });
      }
    }
    else if (ts.isPropertyAssignment(node)) {
      if (this.isProgramCode(node)) this.values.record(node);
    } else if (ts.isCallExpression(node)) {
      if (this.isProgramCode(node)) this.recordRegisteredValues(node);
      const name = calleeName(node);
      if (name) {
        const list = this.callsByName.get(name);
        if (list) list.push(node);
        else this.callsByName.set(name, [node]);
        if (name === 'serveStdio') this.transports.stdio = true;
      }
    } else if (ts.isNewExpression(node)) {
      const cls = this.flow.constructedClassName(node) ?? '';
      if (/^Stdio\w*Transport$/.test(cls)) this.transports.stdio = true;
      else if (/(StreamableHTTP|SSE)\w*Transport$/.test(cls)) this.transports.http = true;
    }
  }

  /**
   * A class-based framework handler: `execute` of a class extending `MCPTool` (mcp-framework), `read` of
   * an `MCPResource`, `generateMessages` of an `MCPPrompt`; the framework calls it per request. The base
   * class is recognized by its import from the framework's package.
   */
  private isFrameworkHandler(method: ts.MethodDeclaration): boolean {
    const name = memberName(method);
    const cls = method.parent;
    if (!name || !ts.isClassLike(cls)) return false;
    for (const clause of cls.heritageClauses ?? []) {
      if (clause.token !== ts.SyntaxKind.ExtendsKeyword) continue;
      const base = clause.types[0] && skipOuter(clause.types[0].expression);
      if (!base || !ts.isIdentifier(base)) continue;
      const handlerMethod = FRAMEWORK_HANDLERS.get(base.text);
      if (handlerMethod === name && this.importedFrom(base, 0, (spec) => FRAMEWORK_PACKAGES.test(spec))) return true;
    }
    return false;
  }

  /**
   * `server.registerTool(name, cfg, handler)` with `const handler = createToolHandler({ logic })`: an
   * argument of a registrar that is a variable or a call, not a function literal, may hold a handler made
   * by a factory. Kept until every file is visited, since resolving it needs the program's call sites.
   */
  private recordRegisteredValues(call: ts.CallExpression): void {
    // With two or more arguments the first is a name, a path or a schema.
    const args = call.arguments.length >= 2 ? call.arguments.slice(1) : call.arguments;
    for (const arg of args) {
      const e = skipOuter(arg);
      if (!ts.isIdentifier(e) && !ts.isCallExpression(e)) continue;
      const reg = handlerRegistration(arg);
      if (reg) this.registeredValues.push({ arg, reg });
    }
  }

  /** The functions registered through values ({@link recordRegisteredValues}) become handlers too. */
  private addFactoryMadeHandlers(): void {
    for (const { arg, reg } of this.registeredValues) {
      if (this.isClientRegistration(arg.parent)) continue;
      for (const fn of this.values.of(arg)) if (!this.handlers.has(fn)) this.handlers.set(fn, reg);
    }
  }

  /** True when the server speaks MCP over stdio only: the process is the session. */
  get stdioOnly(): boolean {
    return this.transports.stdio && !this.transports.http;
  }

  /** Every process-state write reachable from a handler; computed once. */
  writes(): ProcessStateWrite[] {
    if (this.#writes) return this.#writes;
    const out: ProcessStateWrite[] = [];
    const queue: Context[] = [];
    const enqueue = (ctx: Context): void => {
      if (!ctx.fn.body || !this.isProgramCode(ctx.fn)) return;
      const key = `${ctx.thisHolder ? ctx.thisHolder.node.pos + ctx.thisHolder.node.getSourceFile().fileName : ''}|${ctx.replayed}`;
      const seen = this.reached.get(ctx.fn) ?? new Set<string>();
      if (seen.has(key)) return;
      seen.add(key);
      this.reached.set(ctx.fn, seen);
      queue.push(ctx);
    };
    this.writerNames = writerNames(this.programFunctions);
    this.addFactoryMadeHandlers();
    for (const [fn, reg] of this.handlers) {
      enqueue({ fn, registrar: reg.registrar, replayed: isReplayedHandler(reg) });
    }
    // First every function handlers reach, then what they write: whether a value is request data
    // depends on which callers were reached.
    const candidates: Candidate[] = [];
    while (queue.length > 0) this.walk(queue.shift()!, enqueue, candidates);
    const fileReads = candidates.filter((c) => c.kind === 'file-read');
    const judged = new Set<Candidate>();
    // A holder written with session data carries session data itself (`setAllowed(allowedDirectories)`
    // copies one module's state into another's): repeat until no new holder is found.
    for (let round = 0; round < 4; round++) {
      const before = this.sessionHolders.size;
      for (const c of candidates) {
        if (judged.has(c)) continue;
        const kind = c.kind === 'file-write' ? (fileReads.some((r) => sameTarget(r.target, c.target)) ? 'file' : undefined)
          : (c.kind === 'assign' && this.assignmentIsState(c.node as ts.BinaryExpression, c.ctx, c.target)) ||
            (c.kind === 'mutate' && this.mutationIsState(c.node as ts.CallExpression, c.ctx, c.target)) ||
            (c.kind === 'count' && this.countIsState(c.node, c.ctx, c.target)) ? 'memory' : undefined;
        if (!kind) continue;
        judged.add(c);
        this.sessionHolders.add(this.flow.symbolAt(c.target.holder.node)!);
        out.push({ holder: c.target.holder, field: c.target.field, node: c.node, kind, registrar: c.ctx.registrar, replayed: c.ctx.replayed });
      }
      if (this.sessionHolders.size === before) break;
      this.requestMemo.clear();
    }
    this.#writes = this.withoutRequestScoped(out);
    return this.#writes;
  }

  /**
   * Drops the module-level variables that every handler reading them writes first, on every path before
   * the read (`src/analyzer/request-scoped.ts`): each request reads only the value it wrote. A variable
   * some handler reads without writing first (a level `logging/setLevel` sets and tools read) stays. In
   * a stdio-only server the `initialize` handler is the process's first request, so its reads see only
   * what start-up wrote.
   */
  private withoutRequestScoped(writes: ProcessStateWrite[]): ProcessStateWrite[] {
    const byHolder = new Map<ts.Node, ProcessStateWrite[]>();
    for (const w of writes) byHolder.set(w.holder.node, [...(byHolder.get(w.holder.node) ?? []), w]);
    const dropped = new Set<ts.Node>();
    for (const [node, list] of byHolder) {
      const decl = node.parent;
      const symbol = this.flow.symbolAt(node);
      if (!symbol || !decl || !ts.isVariableDeclaration(decl) || !isModuleLevel(decl) || !ts.isIdentifier(decl.name)) continue;
      if (!list.every((w) => !w.field && w.kind === 'memory' && ts.isBinaryExpression(w.node) && w.node.operatorToken.kind === ts.SyntaxKind.EqualsToken)) continue;
      const scoped = new RequestScoped({
        symbolAt: (n) => this.flow.symbolAt(n),
        callees: (call) => (ts.isCallExpression(call) ? this.calleesOf(call) : this.flow.callees(call)).filter((fn) => this.isProgramCode(fn)),
        functions: this.programFunctions,
      }, symbol, decl.name.text);
      // One handler that reads it before writing it keeps it: stop at the first.
      const read = [...this.handlers].some(([fn, reg]) => !(this.stdioOnly && isHandshakeHandler(reg)) && scoped.readsBeforeWrite(fn));
      if (!read && scoped.readsAllSeen([...this.handlers.keys()])) dropped.add(node);
    }
    return dropped.size === 0 ? writes : writes.filter((w) => !dropped.has(w.holder.node));
  }

  // ---------------------------------------------------------------- walking handler code

  private walk(ctx: Context, enqueue: (ctx: Context) => void, out: Candidate[]): void {
    const visit = (n: ts.Node): void => {
      // A handler registered inside another handler is reached on its own, with its own registration.
      if (n !== ctx.fn && isFunctionLike(n) && this.handlers.has(n)) return;
      if (ts.isBinaryExpression(n) && isAssignment(n.operatorToken.kind)) {
        // Assigning a local rebinds the local (`digest = hash(body)` after `let digest = cache.get(body)`).
        const target = this.isLocalVariable(n.left) ? undefined : this.targetOf(n.left, ctx, 0);
        if (target) out.push({ kind: 'assign', target, node: n, ctx });
      } else if (isIncrement(n)) {
        const target = this.isLocalVariable(n.operand) ? undefined : this.targetOf(n.operand, ctx, 0);
        if (target) out.push({ kind: 'count', target, node: n, ctx });
      } else if (ts.isCallExpression(n)) {
        this.visitCall(n, ctx, enqueue, out);
      } else if (ts.isNewExpression(n)) {
        const cls = skipOuter(n.expression);
        const name = ts.isIdentifier(cls) ? cls.text : ts.isPropertyAccessExpression(cls) ? cls.name.text : undefined;
        if (!name || this.writerNames.has(name)) for (const fn of this.flow.callees(n)) enqueue({ fn, registrar: ctx.registrar, replayed: ctx.replayed });
      }
      ts.forEachChild(n, visit);
    };
    if (ctx.fn.body) visit(ctx.fn.body);
  }

  /**
   * An upstream MCP peer made once for the process and spoken to by every session: a child process
   * (`spawn`/`fork` from `node:child_process`) or an SDK client transport created outside any handler
   * and outside per-session code (a gateway's start-up function). The upstream session lives in it.
   */
  private isSharedUpstream(decl: ts.VariableDeclaration): boolean {
    const memo = this.upstreamMemo.get(decl);
    if (memo !== undefined) return memo;
    this.upstreamMemo.set(decl, false);
    // Its initializer or a later assignment (`let child = null; … child = spawn(cmd)`) makes it.
    const symbol = this.flow.symbolAt(decl.name);
    const values = [...(decl.initializer ? [decl.initializer] : []), ...((symbol && this.flow.assignments.get(symbol)) ?? [])];
    const result = values.some((v) => this.createsUpstream(skipOuter(v)) && !enclosingHandler(v) && !sessionScope(this.flow).isPerSessionCode(v));
    this.upstreamMemo.set(decl, result);
    return result;
  }

  private createsUpstream(e: ts.Expression): boolean {
    if (ts.isNewExpression(e)) {
      // An SDK client transport, by the SDK's declarations, or (not installed) by its import from the SDK.
      if (/ClientTransport$/.test(this.flow.sdk.sdkNameOfExpression(e.expression) ?? '')) return true;
      const cls = skipOuter(e.expression);
      return ts.isIdentifier(cls) && /ClientTransport$/.test(cls.text) && this.isSdkObject(cls, 0);
    }
    if (!ts.isCallExpression(e)) return false;
    const callee = skipOuter(e.expression);
    return ts.isIdentifier(callee) && CHILD_SPAWNERS.has(callee.text) && this.importedFrom(callee, 0, (spec) => CHILD_PROCESS_MODULE.test(spec));
  }

  private isUpstreamHolder(holder: Holder): boolean {
    const decl = holder.node.parent;
    return !!decl && ts.isVariableDeclaration(decl) && this.isSharedUpstream(decl);
  }

  private isLocalVariable(expr: ts.Expression): boolean {
    const e = skipOuter(expr);
    const decl = ts.isIdentifier(e) ? this.flow.symbolAt(e)?.valueDeclaration : undefined;
    return !!decl && ts.isVariableDeclaration(decl) && !isModuleLevel(decl);
  }

  private visitCall(call: ts.CallExpression, ctx: Context, enqueue: (ctx: Context) => void, out: Candidate[]): void {
    const callee = skipOuter(call.expression);
    if (ts.isPropertyAccessExpression(callee)) {
      const method = callee.name.text;
      if (this.isFsCall(callee)) {
        for (const arg of call.arguments) {
          const target = this.targetOf(arg, ctx, 0);
          if (target) out.push({ kind: FS_WRITES.has(method) ? 'file-write' : 'file-read', target, node: call, ctx });
        }
        return;
      }
      // `child.stdin.write(msg)`, `upstream.send(msg)`: a session's message written to the process's one upstream peer.
      if (UPSTREAM_WRITES.has(method)) {
        const upstream = this.targetOf(callee.expression, ctx, 0);
        if (upstream && this.isUpstreamHolder(upstream.holder)) {
          out.push({ kind: 'mutate', target: { holder: upstream.holder }, node: call, ctx });
          return;
        }
      }
      // `client.connect(upstream)`: handler code starts the process's one upstream session (an SDK client's
      // `connect` given the shared client transport, whatever its receiver), for whichever session asked first.
      if (method === 'connect') {
        for (const arg of call.arguments) {
          const upstream = this.targetOf(arg, ctx, 0);
          if (upstream && this.isUpstreamHolder(upstream.holder)) out.push({ kind: 'mutate', target: { holder: upstream.holder }, node: call, ctx });
        }
      }
      // Only calls that can reach a write are resolved: the checker's work is most of the cost on a large program.
      const known = this.writerNames.has(method);
      if (!known && !ADDERS.has(method)) return;
      const receiver = this.targetOf(callee.expression, ctx, 0);
      if (receiver && ADDERS.has(method) && this.isCollection(callee.expression, receiver.field ?? receiver.holder)) {
        out.push({ kind: 'mutate', target: receiver, node: call, ctx });
        return;
      }
      if (!known && !receiver) return;
      const callees = this.calleesOf(call);
      this.recordSite(call, callees);
      // A holder used as a memoizing cache (`c.get(k)` returned before `c.set(k, v)`) holds nothing of the session.
      const held = receiver && !this.isMemoized(call) ? receiver.holder : undefined;
      for (const fn of callees) {
        const thisHolder = held ?? (skipOuter(callee.expression).kind === ts.SyntaxKind.ThisKeyword ? ctx.thisHolder : undefined);
        enqueue({ fn, thisHolder, registrar: ctx.registrar, replayed: ctx.replayed });
      }
      return;
    }
    const name = ts.isIdentifier(callee) ? callee.text : undefined;
    if (name && this.programFunctionNames.has(name) && !this.writerNames.has(name)) return;
    const callees = this.calleesOf(call);
    this.recordSite(call, callees);
    for (const fn of callees) enqueue({ fn, registrar: ctx.registrar, replayed: ctx.replayed });
  }

  private recordSite(call: ts.CallExpression, callees: FunctionLike[]): void {
    for (const fn of callees) {
      const list = this.sites.get(fn) ?? [];
      if (!list.includes(call)) list.push(call);
      this.sites.set(fn, list);
    }
  }

  /** `fs.writeFile(…)`, `promises.rename(…)`: a method of an object imported or required from Node's `fs`. */
  private isFsCall(callee: ts.PropertyAccessExpression): boolean {
    if (!FS_WRITES.has(callee.name.text) && !FS_READS.has(callee.name.text)) return false;
    let root: ts.Expression = skipOuter(callee.expression);
    while (ts.isPropertyAccessExpression(root)) root = skipOuter(root.expression);
    if (!ts.isIdentifier(root)) return false;
    const symbol = this.flow.checker.getSymbolAtLocation(root);
    for (const decl of symbol?.declarations ?? []) {
      let n: ts.Node | undefined = decl;
      while (n && !ts.isImportDeclaration(n) && !ts.isVariableDeclaration(n)) n = n.parent;
      if (n && ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier)) return FS_MODULE.test(n.moduleSpecifier.text);
      if (n && ts.isVariableDeclaration(n) && n.initializer) {
        const init = skipOuter(n.initializer);
        const req = ts.isPropertyAccessExpression(init) ? skipOuter(init.expression) : init;
        if (ts.isCallExpression(req) && calleeName(req) === 'require' && req.arguments[0] && ts.isStringLiteralLike(req.arguments[0])) {
          return FS_MODULE.test(req.arguments[0].text);
        }
      }
    }
    return false;
  }

  /**
   * `const run = wrap(handleToolCall); run(name, args)`: a function made by a wrapper (logging, metrics,
   * error handling) calls the functions it was given, with the arguments it gets.
   */
  private wrappedFunctions(id: ts.Identifier): FunctionLike[] {
    const decl = this.flow.symbolAt(id)?.valueDeclaration;
    if (!decl || !ts.isVariableDeclaration(decl) || !decl.initializer) return [];
    const init = skipOuter(decl.initializer);
    if (!ts.isCallExpression(init)) return [];
    const out: FunctionLike[] = [];
    for (const arg of init.arguments) {
      const a = skipOuter(arg);
      if (isFunctionLike(a)) out.push(a);
      else if (ts.isIdentifier(a)) {
        const d = this.flow.symbolAt(a)?.valueDeclaration;
        if (d && isFunctionLike(d)) out.push(d);
      }
    }
    return out;
  }

  /**
   * Methods named `method` of the classes a holder is assigned (`let manager; … manager = new Manager()`),
   * for JavaScript whose variables have no declared type.
   */
  private methodsOfHeldValue(holder: Holder, method: string): FunctionLike[] {
    if (ts.isClassLike(holder.node.parent)) {
      const own = holder.node.parent.members.find((x): x is ts.MethodDeclaration => ts.isMethodDeclaration(x) && x.name.getText() === method);
      return own ? [own] : [];
    }
    const symbol = this.flow.symbolAt(holder.node);
    const decl = symbol?.valueDeclaration;
    const values = [...(symbol ? [...(this.flow.assignments.get(symbol) ?? []), ...(this.propertyValues.get(symbol) ?? [])] : [])];
    if (decl && (ts.isVariableDeclaration(decl) || ts.isPropertyDeclaration(decl)) && decl.initializer) values.push(decl.initializer);
    const out: FunctionLike[] = [];
    for (const v of values) {
      const e = skipOuter(v);
      if (!ts.isNewExpression(e)) continue;
      const cls = this.flow.symbolAt(ts.isPropertyAccessExpression(e.expression) ? e.expression.name : e.expression)?.declarations?.find(ts.isClassLike);
      const m = cls?.members.find((x): x is ts.MethodDeclaration => ts.isMethodDeclaration(x) && x.name.getText() === method);
      if (m) out.push(m);
    }
    return out;
  }

  /** A built-in collection by type; an untyped value (plain JavaScript) counts, since the mutator's name is all there is. */
  /**
   * Is the receiver a collection (Array, Map, Set…)? When its type is unknown (untyped JavaScript, or a
   * declared type from a package that is not installed), what the holder is given decides: a collection
   * literal or constructor, or nothing known (then it may be one); a metric counter's `add` is not.
   */
  private isCollection(expr: ts.Expression, holder: Holder): boolean {
    try {
      const type = this.flow.checker.getTypeAtLocation(expr);
      if (type.flags & ts.TypeFlags.Any) {
        if (ts.isClassLike(holder.node.parent)) return false; // a DI singleton: its methods, not a collection's
        const values = this.valuesOf(holder);
        return values.length === 0 || values.some((v) => isCollectionValue(v));
      }
      const parts = type.isUnion() ? type.types : [type];
      return parts.some((t) => COLLECTION_TYPES.has(t.getSymbol()?.getName() ?? '') || this.flow.checker.isArrayType(t));
    } catch {
      return false;
    }
  }

  // ---------------------------------------------------------------- holders

  /** The process-scoped holder an expression reads or writes through, if any. */
  targetOf(expr: ts.Expression, ctx: Context, depth: number): Target | undefined {
    if (depth > MAX_DEPTH) return undefined;
    const e = skipOuter(expr);
    if (e.kind === ts.SyntaxKind.ThisKeyword) return ctx.thisHolder ? { holder: ctx.thisHolder } : undefined;
    if (ts.isIdentifier(e)) return this.identifierTarget(e, ctx, depth);
    if (ts.isPropertyAccessExpression(e)) {
      const decl = this.flow.symbolAt(e.name)?.valueDeclaration;
      if (decl && ts.isPropertyDeclaration(decl) && hasStatic(decl)) return { holder: { node: decl.name, name: qualifiedName(decl) } };
      if (decl && ts.isGetAccessorDeclaration(decl) && hasStatic(decl)) return this.returnedTarget(decl, ctx, depth);
      const inner = this.targetOf(e.expression, ctx, depth + 1);
      if (!inner) return this.singletonByType(e);
      if (!inner.field && skipOuter(e.expression).kind === ts.SyntaxKind.ThisKeyword && decl && isFieldDeclaration(decl)) {
        return { holder: inner.holder, field: { node: declaredName(decl), name: qualifiedName(decl) } };
      }
      return inner;
    }
    if (ts.isElementAccessExpression(e)) return this.targetOf(e.expression, ctx, depth + 1);
    // `this.store.get(tenant) ?? new Map()`: an entry of a held collection (a nested container) is held too.
    if (ts.isBinaryExpression(e) && (e.operatorToken.kind === ts.SyntaxKind.QuestionQuestionToken || e.operatorToken.kind === ts.SyntaxKind.BarBarToken)) {
      return this.targetOf(e.left, ctx, depth + 1);
    }
    if (ts.isCallExpression(e) && ts.isPropertyAccessExpression(skipOuter(e.expression)) && (skipOuter(e.expression) as ts.PropertyAccessExpression).name.text === 'get') {
      const receiver = (skipOuter(e.expression) as ts.PropertyAccessExpression).expression;
      const inner = this.targetOf(receiver, ctx, depth + 1);
      if (inner && this.isCollection(receiver, inner.field ?? inner.holder)) return inner;
    }
    // `const entries = this.entriesFor(tenant)`: what a method of the held object returns from its own
    // fields (a get-or-create of a nested collection) is held too.
    if (ts.isCallExpression(e) && ts.isPropertyAccessExpression(skipOuter(e.expression)) && ctx.thisHolder &&
        skipOuter((skipOuter(e.expression) as ts.PropertyAccessExpression).expression).kind === ts.SyntaxKind.ThisKeyword) {
      for (const fn of this.flow.callees(e)) {
        if (!this.isProgramCode(fn)) continue;
        const t = this.returnedTarget(fn, { ...ctx, fn }, depth, ctx.thisHolder);
        if (t) return t;
      }
    }
    if (ts.isCallExpression(e) && e.arguments.length > 0 && this.usesDi()) {
      const cls = this.di.resolvedSingleton(e);
      return cls ? classHolder(cls) : undefined;
    }
    if (ts.isCallExpression(e) && e.arguments.length === 0) {
      for (const fn of this.flow.callees(e)) {
        if (!this.isProgramCode(fn)) continue;
        const t = this.returnedTarget(fn, ctx, depth);
        if (t) return t;
      }
    }
    return undefined;
  }

  private returnedTarget(fn: FunctionLike, ctx: Context, depth: number, thisHolder?: Holder): Target | undefined {
    for (const r of returnedExpressions(fn)) {
      const t = this.targetOf(r, { ...ctx, fn, thisHolder }, depth + 1);
      if (t) return t;
    }
    return undefined;
  }

  /**
   * A value whose declared type is a class the dependency-injection container keeps one of
   * (`deps.storage` typed `StorageService`, registered as a singleton): the singleton itself.
   */
  private singletonByType(e: ts.Identifier | ts.PropertyAccessExpression): Target | undefined {
    if (!this.usesDi()) return undefined;
    try {
      const cls = this.flow.checker.getTypeAtLocation(e).getSymbol()?.declarations?.find(ts.isClassLike);
      return cls && this.isProgramCode(cls) && this.di.isSingleton(cls) ? classHolder(cls) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Does the program import a dependency-injection container package? Computed once. */
  private usesDi(): boolean {
    this.#usesDi ??= [...new Set(this.programFunctions.map((f) => f.getSourceFile()))].some(importsDiPackage) || this.di.callsBundledContainer();
    return this.#usesDi;
  }

  private identifierTarget(id: ts.Identifier, ctx: Context, depth: number): Target | undefined {
    const target = this.declaredTarget(id, ctx, depth);
    return target ?? this.singletonByType(id);
  }

  private declaredTarget(id: ts.Identifier, ctx: Context, depth: number): Target | undefined {
    const decl = this.flow.symbolAt(id)?.valueDeclaration;
    if (!decl) return undefined;
    if (ts.isVariableDeclaration(decl)) {
      if (isModuleLevel(decl) && ts.isIdentifier(decl.name)) return { holder: { node: decl.name, name: decl.name.text } };
      if (ts.isIdentifier(decl.name) && this.isSharedUpstream(decl)) return { holder: { node: decl.name, name: decl.name.text } };
      // A local alias of a holder (`const recorder = Recorder.getInstance()`).
      if (decl.initializer && ts.isIdentifier(decl.name) && !isModuleLevel(decl)) return this.targetOf(decl.initializer, ctx, depth + 1);
      return undefined;
    }
    if (ts.isBindingElement(decl) && ts.isObjectBindingPattern(decl.parent)) return this.destructuredTarget(decl, ctx, depth);
    if (ts.isParameter(decl) && ts.isIdentifier(decl.name)) {
      // A holder passed down: `registerTools(server, herokuRepl)` → `herokuRepl.run(…)` in the callee.
      const fn = decl.parent;
      if (!isFunctionLike(fn) || this.handlers.has(fn)) return undefined;
      const index = fn.parameters.indexOf(decl);
      for (const site of this.callSites(fn)) {
        const arg = site.arguments[index];
        const caller = enclosingFunction(site);
        const t = arg && this.targetOf(arg, { ...ctx, fn: caller ?? ctx.fn, thisHolder: undefined }, depth + 1);
        if (t) return t;
      }
    }
    return undefined;
  }

  /**
   * `const { storage } = deps`: the holder a destructured property holds, followed through object
   * literals (`{ storage: container.resolve(Storage) }`), locals, parameters (what call sites pass) and
   * the values calls return (`getDeps()`, a memoizing closure that returns the object it built).
   */
  private destructuredTarget(decl: ts.BindingElement, ctx: Context, depth: number): Target | undefined {
    const key = propertyNameText(decl.propertyName ?? decl.name);
    const source = decl.parent.parent;
    if (!key) return undefined;
    if (ts.isVariableDeclaration(source)) return source.initializer ? this.propertyTarget(source.initializer, key, ctx, depth + 1) : undefined;
    if (ts.isParameter(source)) return this.parameterValues(source).map((arg) => this.propertyTarget(arg, key, ctx, depth + 1)).find(Boolean);
    return undefined;
  }

  private propertyTarget(expr: ts.Expression, key: string, ctx: Context, depth: number): Target | undefined {
    if (depth > MAX_DEPTH) return undefined;
    const e = skipOuter(expr);
    if (ts.isObjectLiteralExpression(e)) {
      for (const p of e.properties) {
        if (ts.isPropertyAssignment(p) && propertyNameText(p.name) === key) return this.targetOf(p.initializer, ctx, depth + 1);
        if (ts.isShorthandPropertyAssignment(p) && p.name.text === key) return this.targetOf(p.name, ctx, depth + 1);
      }
      return undefined;
    }
    if (ts.isIdentifier(e)) {
      const symbol = this.flow.symbolAt(e);
      const decl = symbol?.valueDeclaration;
      if (decl && ts.isVariableDeclaration(decl) && !isModuleLevel(decl)) {
        const values = [...(decl.initializer ? [decl.initializer] : []), ...(this.flow.assignments.get(symbol!) ?? [])];
        return values.map((v) => this.propertyTarget(v, key, ctx, depth + 1)).find(Boolean);
      }
      if (decl && ts.isParameter(decl)) return this.parameterValues(decl).map((arg) => this.propertyTarget(arg, key, ctx, depth + 1)).find(Boolean);
    }
    if (ts.isCallExpression(e)) {
      for (const fn of this.values.calleesOf(e)) {
        for (const r of returnedExpressions(fn)) {
          const t = this.propertyTarget(r, key, { ...ctx, fn }, depth + 1);
          if (t) return t;
        }
      }
      return undefined;
    }
    return undefined;
  }

  /** What the call sites of a parameter's function pass for it. */
  private parameterValues(param: ts.ParameterDeclaration): ts.Expression[] {
    const fn = param.parent;
    if (!isFunctionLike(fn) || this.handlers.has(fn)) return [];
    const index = fn.parameters.indexOf(param);
    return this.callSites(fn).flatMap((site) => (site.arguments[index] ? [site.arguments[index]!] : []));
  }

  /** Calls of `fn` in the program, found by name and confirmed by resolution. */
  private callSites(fn: FunctionLike): ts.CallExpression[] {
    const name = fn.name && ts.isIdentifier(fn.name) ? fn.name.text : fn.parent && ts.isVariableDeclaration(fn.parent) && ts.isIdentifier(fn.parent.name) ? fn.parent.name.text : undefined;
    const byName = name ? (this.callsByName.get(name) ?? []).filter((c) => this.calleesOf(c).includes(fn)) : [];
    return [...new Set([...byName, ...(this.sites.get(fn) ?? [])])];
  }

  /** The checker's callees, or for an untyped holder (plain JavaScript) the methods of the classes it is assigned. */
  private calleesOf(call: ts.CallExpression): FunctionLike[] {
    const cached = this.calleeMemo.get(call);
    if (cached) return cached;
    const callees = this.flow.callees(call);
    this.calleeMemo.set(call, callees); // also the answer while resolving below (recursion through parameters)
    if (callees.length > 0) return callees;
    const untyped = this.untypedCallees(call);
    // `logic(input, ctx)` through a parameter or a destructured option: the functions passed for it.
    const resolved = untyped.length > 0 ? untyped : this.values.of(call.expression);
    this.calleeMemo.set(call, resolved);
    return resolved;
  }

  private untypedCallees(call: ts.CallExpression): FunctionLike[] {
    const callee = skipOuter(call.expression);
    if (ts.isIdentifier(callee)) return this.wrappedFunctions(callee);
    if (!ts.isPropertyAccessExpression(callee)) return [];
    const receiver = this.targetOf(callee.expression, { fn: enclosingFunction(call)!, registrar: '', replayed: false }, 0);
    return receiver && !receiver.field ? this.methodsOfHeldValue(receiver.holder, callee.name.text) : [];
  }

  /** The expressions a holder is initialized or assigned with (its declaration's initializer, assignments to it). */
  private valuesOf(holder: Holder): ts.Expression[] {
    const symbol = this.flow.symbolAt(holder.node);
    const decl = symbol?.valueDeclaration;
    const out: ts.Expression[] = [];
    if (decl && (ts.isVariableDeclaration(decl) || ts.isPropertyDeclaration(decl)) && decl.initializer) out.push(decl.initializer);
    if (decl && ts.isBinaryExpression(decl)) out.push(decl.right);
    if (symbol) out.push(...(this.flow.assignments.get(symbol) ?? []).filter((v) => !out.includes(v)));
    return out;
  }

  // ---------------------------------------------------------------- what a write writes

  private assignmentIsState(assign: ts.BinaryExpression, ctx: Context, target: Target): boolean {
    const op = assign.operatorToken.kind;
    const value = skipOuter(assign.right);
    if (isNullish(value)) return false;
    // Counters, metrics, timestamps; unless the session's data decides whether it counts (see countIsState).
    const counts = op === ts.SyntaxKind.PlusEqualsToken || op === ts.SyntaxKind.MinusEqualsToken || isArithmetic(value);
    if (counts && this.isNumber(assign.left)) return this.countIsState(assign, ctx, target);
    if (isLiteral(value)) return false;
    if (this.isNumber(assign.left) || this.isNumber(value) || isArithmetic(value)) return false;
    if (this.isRequestData(value, ctx, 0)) return true;
    // `state[args.key] = …`: an entry the session chose.
    const left = skipOuter(assign.left);
    if (ts.isElementAccessExpression(left) && this.isRequestData(left.argumentExpression, ctx, 0)) return true;
    // The held value derived from itself: a toggle or an accumulation (`x = !x`, `x = [...x, y]`). A merge
    // of what is not request data into an object (`config = { ...config, ...defaults }`) gives the same
    // object however often it runs: not state.
    // A class or function expression that names itself (`McpError = class McpError …`) is a definition.
    if (op === ts.SyntaxKind.EqualsToken && mentions(value, assign.left) && !ts.isObjectLiteralExpression(value) && !ts.isClassExpression(value) && !isFunctionLike(value)) return true;
    return false;
  }

  private mutationIsState(call: ts.CallExpression, ctx: Context, target: Target): boolean {
    if (this.isMemoized(call) || isRemovedWhenRequestEnds(call)) return false;
    if (calleeName(call) === 'connect' && this.isUpstreamHolder(target.holder)) return true;
    // `used.push(pick)` where `pick` was chosen by reading `used` (a rotation, a cursor): the collection's
    // next content depends on its current content, so it carries from request to request.
    if (GROWERS.has(calleeName(call) ?? '') && call.arguments.some((a) => this.derivesFromHolder(a, target, 0))) return true;
    // `pages.set(randomUUID(), page)`: an entry under an id the request minted is found only by a later
    // request that was given the id (a handle), so it outlives the request.
    if (calleeName(call) === 'set' && call.arguments.length >= 2 && this.isMintedId(call.arguments[0]!, 0)) return true;
    return call.arguments.some((a) => !this.isNumber(a) && !isArithmetic(skipOuter(a)) && this.isRequestData(a, ctx, 0));
  }

  /**
   * A counter (`score.correct++`, `hits += 1`) is a metric unless the session's data decides whether it
   * counts (it runs under a condition on request data: `if (answer === expected) score.correct++`) and
   * handler code reads it back (`get_score` returns it): then a session's later request reads what its
   * earlier ones did, on whichever replica counted them. An unconditional count of requests is a metric.
   */
  private countIsState(write: ts.Node, ctx: Context, target: Target): boolean {
    return this.isGuardedByRequestData(write, ctx) && this.isReadBack(target);
  }

  /** Does `node` run only under a condition (an `if`, `?:`, `&&`/`||` operand) on request data, within `ctx.fn`? */
  private isGuardedByRequestData(node: ts.Node, ctx: Context): boolean {
    for (let child: ts.Node = node, parent = node.parent; parent && child !== ctx.fn; child = parent, parent = parent.parent) {
      const condition = ts.isIfStatement(parent) && child !== parent.expression ? parent.expression
        : ts.isConditionalExpression(parent) && child !== parent.condition ? parent.condition
        : ts.isBinaryExpression(parent) && child === parent.right && (parent.operatorToken.kind === ts.SyntaxKind.AmpersandAmpersandToken || parent.operatorToken.kind === ts.SyntaxKind.BarBarToken) ? parent.left
        : undefined;
      if (condition && this.isRequestData(condition, ctx, 0)) return true;
    }
    return false;
  }

  /** Does a function handlers reach read the holder (or its written field) other than to update it? */
  private isReadBack(target: Target): boolean {
    const place = target.field ?? target.holder;
    const symbol = this.flow.symbolAt(place.node);
    if (!symbol) return false;
    const text = place.node.getText();
    for (const fn of this.reached.keys()) {
      if (fn.body && containsNode(fn.body, (n) => (ts.isIdentifier(n) || ts.isPrivateIdentifier(n)) && n.text === text && this.flow.symbolAt(n) === symbol && !isUpdateOperand(n))) return true;
    }
    return false;
  }

  /** Is `expr` computed from the holder's (or its field's) current content, through locals and callbacks? */
  private derivesFromHolder(expr: ts.Node, target: Target, depth: number): boolean {
    if (depth > 3) return false;
    const symbols = new Set([this.flow.symbolAt(target.holder.node), target.field && this.flow.symbolAt(target.field.node)].filter(Boolean));
    return containsNode(expr, (n) => {
      if (!ts.isIdentifier(n)) return false;
      const symbol = this.flow.symbolAt(n);
      if (symbols.has(symbol)) return true;
      const decl = symbol?.valueDeclaration;
      return !!decl && ts.isVariableDeclaration(decl) && !isModuleLevel(decl) && !!decl.initializer && this.derivesFromHolder(decl.initializer, target, depth + 1);
    });
  }

  /** An id minted here: `crypto.randomUUID()` / `randomBytes(…)` (node:crypto, Web Crypto), directly or through a local. */
  private isMintedId(expr: ts.Expression, depth: number): boolean {
    const e = skipOuter(expr);
    if (depth > 3) return false;
    if (ts.isCallExpression(e)) return ID_MINTERS.has(calleeName(e) ?? '') || (ts.isPropertyAccessExpression(e.expression) && this.isMintedId(e.expression.expression, depth + 1));
    if (ts.isTemplateExpression(e)) return e.templateSpans.some((span) => this.isMintedId(span.expression, depth + 1));
    if (!ts.isIdentifier(e)) return false;
    const decl = this.flow.symbolAt(e)?.valueDeclaration;
    return !!decl && ts.isVariableDeclaration(decl) && !isModuleLevel(decl) && !!decl.initializer && this.isMintedId(decl.initializer, depth + 1);
  }

  private isNumber(expr: ts.Expression): boolean {
    try {
      const type = this.flow.checker.getTypeAtLocation(expr);
      return (type.flags & ts.TypeFlags.NumberLike) !== 0;
    } catch {
      return false;
    }
  }

  /**
   * A memoizing cache: the function that writes `c.set(k, v)` looks `k` up first (`c.get(k)` / `c.has(k)`)
   * and returns what it reads, or stores back the variable it read into.
   */
  private isMemoized(write: ts.CallExpression): boolean {
    const callee = skipOuter(write.expression) as ts.PropertyAccessExpression;
    const key = write.arguments[0];
    const fn = enclosingFunction(write);
    if (!key || !fn?.body || write.arguments.length < 2) return false;
    const receiverText = callee.expression.getText();
    const keyText = skipOuter(key).getText();
    const readVars = new Set<ts.Symbol>();
    let returnsRead = false;
    const isRead = (n: ts.Node): boolean =>
      ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression) && n.expression.expression.getText() === receiverText &&
      ['get', 'has', 'peek'].includes(n.expression.name.text) && !!n.arguments[0] && skipOuter(n.arguments[0]).getText() === keyText;
    // A memo looks the key up before it writes it (`if (!c.has(k)) c.set(k, v)`, `const hit = c.get(k)`);
    // a function that only reads after writing returns what the session just stored.
    if (!containsNode(fn.body, (n) => n.pos < write.pos && isRead(n))) return false;
    const visit = (n: ts.Node): void => {
      if (ts.isVariableDeclaration(n) && n.pos < write.pos && n.initializer && ts.isIdentifier(n.name) && containsNode(n.initializer, isRead)) {
        const s = this.flow.symbolAt(n.name);
        if (s) readVars.add(s);
      }
      if (ts.isReturnStatement(n) && n.expression && (containsNode(n.expression, isRead) || containsNode(n.expression, (x) => ts.isIdentifier(x) && readVars.has(this.flow.symbolAt(x)!)))) returnsRead = true;
      ts.forEachChild(n, visit);
    };
    visit(fn.body);
    if (returnsRead) return true;
    const value = write.arguments[1];
    return !!value && ts.isIdentifier(skipOuter(value)) && readVars.has(this.flow.symbolAt(skipOuter(value))!);
  }

  /**
   * Does `expr`, evaluated in `ctx.fn`, carry data of the session: a handler's parameters, values
   * derived from them (through locals, calls, the parameters of called functions), what the SDK returns
   * about the client, or an object a handler constructs?
   */
  isRequestData(expr: ts.Node, ctx: Context, depth: number): boolean {
    if (depth > MAX_DEPTH) return false;
    // A value judged for one call depends on that call's arguments: not memoized.
    if (ctx.call) return this.computeRequestData(expr, ctx, depth);
    const memo = this.requestMemo.get(expr);
    if (memo !== undefined) return memo;
    this.requestMemo.set(expr, false); // cycle guard
    const result = this.computeRequestData(expr, ctx, depth);
    this.requestMemo.set(expr, result);
    return result;
  }

  private computeRequestData(expr: ts.Node, ctx: Context, depth: number): boolean {
    let found = false;
    const visit = (n: ts.Node): void => {
      if (found) return;
      if (isFunctionLike(n) || ts.isClassLike(n)) return; // callbacks: their call's receiver and arguments decide
      if (n.kind === ts.SyntaxKind.ThisKeyword) {
        const fn = enclosingFunction(n);
        if (fn && ts.isConstructorDeclaration(fn) && this.reached.has(fn)) found = true;
        return;
      }
      if (ts.isIdentifier(n)) {
        if ((ts.isPropertyAccessExpression(n.parent) || ts.isPropertyAssignment(n.parent)) && n.parent.name === n) return;
        if (this.identifierIsRequestData(n, ctx, depth)) found = true;
        return;
      }
      if (ts.isCallExpression(n) && this.isClientApiCall(n)) {
        found = true;
        return;
      }
      if (ts.isCallExpression(n) && depth < MAX_DEPTH) {
        for (const fn of this.flow.callees(n)) {
          if (!fn.body || !this.isProgramCode(fn)) continue;
          // The callee's parameters are this call's arguments (`createCounter('fixed.name')` returns
          // nothing of the session even when other call sites pass request data).
          if (returnedExpressions(fn).some((r) => this.isRequestData(r, { ...ctx, fn, call: { site: n, caller: ctx } }, depth + 1))) {
            found = true;
            return;
          }
        }
      }
      ts.forEachChild(n, visit);
    };
    visit(expr);
    return found;
  }

  /**
   * Is the function handler code: reached by the walk, or nested in a function that is (a listener that
   * handler code registers, `page.on('console', (msg) => logs.push(msg.text()))`, is walked with the
   * code that registers it, and runs for what that code set up).
   */
  private isReached(fn: FunctionLike): boolean {
    for (let f: FunctionLike | undefined = fn; f; f = enclosingFunction(f)) {
      if (this.reached.has(f)) return true;
      if (this.handlers.has(f)) return false; // a handler of its own is reached on its own
    }
    return false;
  }

  private identifierIsRequestData(id: ts.Identifier, ctx: Context, depth: number): boolean {
    const symbol = ts.isShorthandPropertyAssignment(id.parent) && id.parent.name === id ? this.flow.checker.getShorthandAssignmentValueSymbol(id.parent) : this.flow.symbolAt(id);
    let decl: ts.Node | undefined = symbol?.valueDeclaration;
    if (!decl) return false;
    while (ts.isBindingElement(decl) && decl.parent?.parent) decl = decl.parent.parent;
    if (ts.isParameter(decl)) {
      const fn = decl.parent;
      if (!isFunctionLike(fn)) return false;
      if (this.handlers.has(fn)) return true;
      // A callback's parameter carries what its call works on (`args.items.map(i => …)`).
      if ((ts.isArrowFunction(fn) || ts.isFunctionExpression(fn)) && ts.isCallExpression(fn.parent)) {
        const call = fn.parent;
        const recv = skipOuter(call.expression);
        if (ts.isPropertyAccessExpression(recv) && this.isRequestData(recv.expression, ctx, depth + 1)) return true;
        return call.arguments.some((a) => a !== fn && this.isRequestData(a, ctx, depth + 1));
      }
      const index = fn.parameters.indexOf(decl as ts.ParameterDeclaration);
      if (ctx.call && ctx.fn === fn) {
        const arg = ctx.call.site.arguments[index];
        return !!arg && this.isRequestData(arg, ctx.call.caller, depth + 1);
      }
      return this.callSites(fn).some((site) => {
        const arg = site.arguments[index];
        const caller = enclosingFunction(site);
        return !!arg && !!caller && this.isReached(caller) && this.isRequestData(arg, { ...ctx, fn: caller }, depth + 1);
      });
    }
    if (ts.isVariableDeclaration(decl) && isModuleLevel(decl)) return this.sessionHolders.has(symbol);
    if (ts.isVariableDeclaration(decl)) {
      if (decl.initializer && this.isRequestData(decl.initializer, ctx, depth + 1)) return true;
      return (symbol && this.flow.assignments.get(symbol)?.some((v) => v !== (decl as ts.VariableDeclaration).initializer && this.isRequestData(v, ctx, depth + 1))) ?? false;
    }
    return false;
  }

  /**
   * A call into the MCP SDK from handler code returns what the client said or holds (roots, capabilities,
   * client info, sampling results, registered handles): a method declared in an `@modelcontextprotocol`
   * package, or, when its declarations are not installed, a method of an object built from a class
   * imported from one (`server.server.listRoots()` with `server = new McpServer(…)`).
   */
  private isClientApiCall(call: ts.CallExpression): boolean {
    const callee = skipOuter(call.expression);
    if (!ts.isPropertyAccessExpression(callee)) return false;
    const decl = this.flow.symbolAt(callee.name)?.declarations?.[0];
    if (decl) return MCP_PACKAGE.test(decl.getSourceFile().fileName) && ts.isMethodDeclaration(decl);
    // Untyped JavaScript (`setup(server)` with no import): the SDK server's accessors for what the client
    // sent in `initialize` and its roots are known by their names.
    if (CLIENT_ACCESSORS.has(callee.name.text)) return true;
    let root: ts.Expression = skipOuter(callee.expression);
    while (ts.isPropertyAccessExpression(root)) root = skipOuter(root.expression);
    return ts.isIdentifier(root) && this.isSdkObject(root, 0);
  }

  /**
   * `client.setRequestHandler(…)` or `app.ontoolresult = …` on an object of a client-side SDK class (the
   * SDK's `Client`, an MCP App in the host's UI), by its declaration or its import.
   */
  private isClientRegistration(site: ts.Node | undefined): boolean {
    if (!site) return false;
    const callee = ts.isCallExpression(site) ? skipOuter(site.expression) : ts.isBinaryExpression(site) ? skipOuter(site.left) : undefined;
    if (!callee || !ts.isPropertyAccessExpression(callee)) return false;
    try {
      const decl = this.flow.checker.getTypeAtLocation(callee.expression).getSymbol()?.declarations?.[0];
      if (decl) return MCP_PACKAGE.test(decl.getSourceFile().fileName) && CLIENT_SIDE_PATH.test(decl.getSourceFile().fileName);
    } catch {
      /* no type information */
    }
    let root: ts.Expression = skipOuter(callee.expression);
    while (ts.isPropertyAccessExpression(root)) root = skipOuter(root.expression);
    return ts.isIdentifier(root) && this.importedFrom(root, 0, (spec) => CLIENT_SIDE_SPECIFIER.test(spec));
  }

  private isSdkObject(id: ts.Identifier, depth: number): boolean {
    return this.importedFrom(id, depth, (spec) => spec.startsWith('@modelcontextprotocol/'));
  }

  /** Is `id` imported from a module the predicate accepts, or built (`new X()`, a parameter typed `X`) from a class so imported? */
  private importedFrom(id: ts.Identifier, depth: number, accept: (specifier: string) => boolean): boolean {
    if (depth > 3) return false;
    const symbol = this.flow.checker.getSymbolAtLocation(id);
    for (const decl of symbol?.declarations ?? []) {
      if (ts.isImportSpecifier(decl) || ts.isImportClause(decl) || ts.isNamespaceImport(decl)) {
        let imp: ts.Node = decl;
        while (!ts.isImportDeclaration(imp)) imp = imp.parent;
        return ts.isStringLiteral(imp.moduleSpecifier) && accept(imp.moduleSpecifier.text);
      }
      if (ts.isVariableDeclaration(decl) && decl.initializer) {
        const init = skipOuter(decl.initializer);
        const made = ts.isNewExpression(init) ? skipOuter(init.expression) : undefined;
        if (made && ts.isIdentifier(made)) return this.importedFrom(made, depth + 1, accept);
        const bundled = requiredPackage(init, (n) => this.flow.symbolAt(n), this.dependencyAt);
        if (bundled) return accept(bundled);
      }
      if (ts.isParameter(decl) && decl.type && ts.isTypeReferenceNode(decl.type) && ts.isIdentifier(decl.type.typeName)) {
        return this.importedFrom(decl.type.typeName, depth + 1, accept);
      }
    }
    return false;
  }
}

/**
 * The package a bundled CommonJS module comes from, for the bundler's interop call that loads it:
 * esbuild's `__toESM(require_tsyringe())` or `require_tsyringe()`, where `require_tsyringe = __commonJS(…)`
 * is written inside the module's segment of the bundle (`// node_modules/tsyringe/dist/cjs/index.js`).
 * Known by where the wrapper is declared, never by its name.
 */
function requiredPackage(init: ts.Expression, symbolAt: (n: ts.Node) => ts.Symbol | undefined, dependencyAt: (n: ts.Node) => Dependency | undefined): string | undefined {
  if (!ts.isCallExpression(init)) return undefined;
  const first = init.arguments[0] && skipOuter(init.arguments[0]);
  for (const call of [init, first]) {
    if (!call || !ts.isCallExpression(call) || call.arguments.length > 0) continue;
    const callee = skipOuter(call.expression);
    const decl = ts.isIdentifier(callee) ? symbolAt(callee)?.valueDeclaration : undefined;
    if (decl && ts.isVariableDeclaration(decl) && decl.initializer && ts.isCallExpression(skipOuter(decl.initializer))) {
      const dependency = dependencyAt(decl);
      if (dependency) return dependency.name;
    }
  }
  return undefined;
}

type Registration = NonNullable<ReturnType<typeof handlerRegistration>>;

/** A dependency-injection singleton as a holder: reported at its class's name. */
function classHolder(cls: ts.ClassLikeDeclaration): Target | undefined {
  return cls.name ? { holder: { node: cls.name, name: cls.name.text } } : undefined;
}

/**
 * Names of the functions that may write state outside themselves (an assignment or collection mutation
 * rooted at `this` or at a name the function does not declare, or a file-system call), or that call such
 * a function by name; a purely syntactic over-approximation, so that the walk resolves no other call.
 */
function writerNames(functions: readonly FunctionLike[]): Set<string> {
  const calls = new Map<string, Set<string>>();
  const writers = new Set<string>();
  for (const fn of functions) {
    const name = ts.isConstructorDeclaration(fn) ? fn.parent.name?.text : functionName(fn) ?? memberName(fn);
    if (!name || !fn.body) continue;
    const declared = new Set<string>();
    const called = calls.get(name) ?? new Set<string>();
    let writes = false;
    const visit = (n: ts.Node): void => {
      if ((ts.isVariableDeclaration(n) || ts.isParameter(n) || ts.isBindingElement(n) || ts.isFunctionDeclaration(n)) && n.name && ts.isIdentifier(n.name)) declared.add(n.name.text);
      ts.forEachChild(n, visit);
    };
    visit(fn);
    const free = (e: ts.Expression): boolean => {
      let r = skipOuter(e);
      while (ts.isPropertyAccessExpression(r) || ts.isElementAccessExpression(r) || ts.isCallExpression(r)) r = skipOuter(r.expression);
      return r.kind === ts.SyntaxKind.ThisKeyword || (ts.isIdentifier(r) && !declared.has(r.text));
    };
    const scan = (n: ts.Node): void => {
      if (ts.isBinaryExpression(n) && isAssignment(n.operatorToken.kind) && free(n.left)) writes = true;
      else if (isIncrement(n) && free(n.operand)) writes = true;
      else if (ts.isCallExpression(n)) {
        const c = skipOuter(n.expression);
        const m = ts.isPropertyAccessExpression(c) ? c.name.text : ts.isIdentifier(c) ? c.text : undefined;
        if (m) called.add(m);
        if (m && (FS_WRITES.has(m) || FS_READS.has(m))) writes = true;
        if (m && ADDERS.has(m) && ts.isPropertyAccessExpression(c) && free(c.expression)) writes = true;
      } else if (ts.isNewExpression(n)) {
        const c = skipOuter(n.expression);
        const m = ts.isPropertyAccessExpression(c) ? c.name.text : ts.isIdentifier(c) ? c.text : undefined;
        if (m) called.add(m); // a constructor is known by its class's name
      }
      ts.forEachChild(n, scan);
    };
    scan(fn.body);
    calls.set(name, called);
    if (writes) writers.add(name);
  }
  addCallersByName(calls, writers);
  return writers;
}

/**
 * The registration of a handler, also when it reaches the registrar through wrappers
 * (`setRequestHandler(S, withLogging('x', withMetrics(async (request) => …)))`).
 */
function registrationThroughWrappers(fn: FunctionLike): { reg: Registration; call?: ts.CallExpression } | undefined {
  let child: ts.Node = fn;
  for (let level = 0; level < 4; level++) {
    const reg = handlerRegistration(child);
    const call = child.parent;
    if (reg) return { reg, call: call && ts.isCallExpression(call) ? call : undefined };
    if (!call || !ts.isCallExpression(call) || !call.arguments.includes(child as ts.Expression)) return undefined;
    child = call;
  }
  return undefined;
}

/** `m` in `m() {}`, `get m() {}`, `{ m: () => … }`, `m = () => …` (a class field). */
function memberName(fn: FunctionLike): string | undefined {
  const named = ts.isMethodDeclaration(fn) || ts.isGetAccessorDeclaration(fn) ? fn.name : ts.isPropertyAssignment(fn.parent) || ts.isPropertyDeclaration(fn.parent) ? fn.parent.name : undefined;
  return named ? propertyNameText(named) : undefined;
}

function isAssignment(kind: ts.SyntaxKind): boolean {
  return kind >= ts.SyntaxKind.FirstAssignment && kind <= ts.SyntaxKind.LastAssignment;
}

function hasStatic(decl: ts.Node): boolean {
  return ts.canHaveModifiers(decl) && !!ts.getModifiers(decl)?.some((m) => m.kind === ts.SyntaxKind.StaticKeyword);
}

function isFieldDeclaration(decl: ts.Node): boolean {
  return ts.isPropertyDeclaration(decl) || (ts.isParameter(decl) && ts.isParameterPropertyDeclaration(decl, decl.parent)) ||
    (ts.isBinaryExpression(decl) && ts.isPropertyAccessExpression(decl.left));
}

/** The name node of a field: `x` in `x = 1;`, `private x`, or `this.x = …` (JavaScript). */
function declaredName(decl: ts.Node): ts.Node {
  return ts.isBinaryExpression(decl) ? (decl.left as ts.PropertyAccessExpression).name : (decl as ts.NamedDeclaration).name ?? decl;
}

function qualifiedName(decl: ts.Node): string {
  const named = declaredName(decl);
  const own = ts.isIdentifier(named) || ts.isPrivateIdentifier(named) ? named.text : named.getText();
  let cls: ts.Node | undefined = decl.parent;
  while (cls && !ts.isClassLike(cls)) cls = cls.parent;
  return cls && ts.isClassLike(cls) && cls.name ? `${cls.name.text}.${own}` : own;
}

/** `n + 1`, `(x ?? 0) * 2`: arithmetic with a numeric literal, the shape of a counter. */
function isArithmetic(e: ts.Expression): boolean {
  if (!ts.isBinaryExpression(e)) return false;
  const op = e.operatorToken.kind;
  const arithmetic = op === ts.SyntaxKind.PlusToken || op === ts.SyntaxKind.MinusToken || op === ts.SyntaxKind.AsteriskToken || op === ts.SyntaxKind.SlashToken;
  return arithmetic && (ts.isNumericLiteral(skipOuter(e.left)) || ts.isNumericLiteral(skipOuter(e.right)));
}

/** `x++`, `--x`. */
function isIncrement(n: ts.Node): n is ts.PrefixUnaryExpression | ts.PostfixUnaryExpression {
  return (ts.isPostfixUnaryExpression(n) || ts.isPrefixUnaryExpression(n)) && (n.operator === ts.SyntaxKind.PlusPlusToken || n.operator === ts.SyntaxKind.MinusMinusToken);
}

/** Is the name (or the property chain it starts or ends) the operand of `++`/`--` or the left side of an assignment? */
function isUpdateOperand(n: ts.Node): boolean {
  let top: ts.Node = n;
  while (top.parent && ((ts.isPropertyAccessExpression(top.parent) && (top.parent.expression === top || top.parent.name === top)) || (ts.isElementAccessExpression(top.parent) && top.parent.expression === top))) top = top.parent;
  const parent = top.parent;
  if (parent && isIncrement(parent)) return true;
  return !!parent && ts.isBinaryExpression(parent) && parent.left === top && isAssignment(parent.operatorToken.kind);
}

function isNullish(e: ts.Expression): boolean {
  return e.kind === ts.SyntaxKind.NullKeyword || ts.isVoidExpression(e) || (ts.isIdentifier(e) && e.text === 'undefined');
}

function isLiteral(e: ts.Expression): boolean {
  return ts.isLiteralExpression(e) || ts.isNoSubstitutionTemplateLiteral(e) || e.kind === ts.SyntaxKind.TrueKeyword || e.kind === ts.SyntaxKind.FalseKeyword ||
    (ts.isPrefixUnaryExpression(e) && ts.isNumericLiteral(e.operand));
}

/** Does `value` read the same place `target` names (same text, e.g. `state.on` in `state.on = !state.on`)? */
function mentions(value: ts.Expression, target: ts.Expression): boolean {
  const text = skipOuter(target).getText();
  return containsNode(value, (n) => (ts.isIdentifier(n) || ts.isPropertyAccessExpression(n)) && n.getText() === text);
}

/** True when `pred` holds for `root` or any node under it. */
export function containsNode(root: ts.Node, pred: (n: ts.Node) => boolean): boolean {
  if (pred(root)) return true;
  return !!ts.forEachChild(root, (c) => (containsNode(c, pred) ? true : undefined));
}

function sameTarget(a: Target, b: Target): boolean {
  return a.holder.node === b.holder.node && a.field?.node === b.field?.node;
}

/**
 * `set.add(conn); res.on('close', () => set.delete(conn))`: an entry the same function removes when the
 * request or its response ends (a `close`/`finish`/`end` listener) lives one request, not a session.
 */
function isRemovedWhenRequestEnds(write: ts.CallExpression): boolean {
  const callee = skipOuter(write.expression);
  const fn = enclosingFunction(write);
  if (!ts.isPropertyAccessExpression(callee) || !fn?.body) return false;
  const receiver = callee.expression.getText();
  return containsNode(fn.body, (n) => {
    if (!ts.isCallExpression(n) || !['on', 'once', 'addListener'].includes(calleeName(n) ?? '')) return false;
    const [event, listener] = n.arguments;
    if (!event || !ts.isStringLiteralLike(event) || !REQUEST_END_EVENTS.has(event.text) || !listener) return false;
    return containsNode(listener, (d) => ts.isCallExpression(d) && ts.isPropertyAccessExpression(d.expression) &&
      ['delete', 'splice', 'pop', 'shift'].includes(d.expression.name.text) && d.expression.expression.getText() === receiver);
  });
}

/** `[]`, `new Map()`, `new Set()`, `Array.from(…)`, `[...x]`: a value that is a collection by its shape. */
function isCollectionValue(value: ts.Expression): boolean {
  const v = skipOuter(value);
  if (ts.isArrayLiteralExpression(v)) return true;
  if (ts.isNewExpression(v) || ts.isCallExpression(v)) {
    const callee = skipOuter(v.expression);
    const name = ts.isIdentifier(callee) ? callee.text : ts.isPropertyAccessExpression(callee) && ts.isIdentifier(callee.expression) ? callee.expression.text : undefined;
    return !!name && (COLLECTION_TYPES.has(name) || name === 'Array');
  }
  return false;
}
