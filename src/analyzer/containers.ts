/**
 * In-process containers keyed by session id: the Maps, Sets, WeakMaps, objects (`Record`, index
 * signatures) and arrays that hold something per MCP session.
 *
 * A container is session-keyed when a session id (see {@link SessionFlow}) is used as its key
 * (`m.set(sid, …)`, `m.get(sid)`, `s.add(sid)`, `o[sid] = …`), is pushed into it inside an object
 * (`a.push({ sessionId, transport })`), or is searched for (`a.find(t => t.sessionId === sid)`).
 * Nested containers count for their root: in `const subs = byUri.get(uri) ?? new Set(); subs.add(sid)`
 * the state is `byUri`. Only in-memory collections count: a Redis or other external client used the
 * same way is not process state.
 */
import { ts } from 'ts-morph';
import { calleeName, enclosingFunction, isFunctionLike, isInside, isModuleLevel, skipOuter } from './ast.js';
import { isRegistryValueKind } from './sdk-types.js';
import { sessionScope, type SessionScope } from './session-scope.js';
import type { SessionFlow } from './session-flow.js';

export type ContainerKind = 'map' | 'set' | 'weakmap' | 'object' | 'array' | 'cache' | 'store';

export interface SessionContainer {
  /** The declaration's name node (variable, field, property, interface member). */
  node: ts.Node;
  name: string;
  kind: ContainerKind;
  /** Expressions stored in the container (map values, pushed elements, assigned properties). */
  values: ts.Expression[];
  /** Holds transports or MCP server instances: a session registry. */
  isRegistry: boolean;
  /** Every stored value is plain data that a store can serialize (JSON, or a set of ids). */
  serializable: boolean;
  /** A Set of session ids (membership only), possibly nested in a map. */
  idSet: boolean;
  /**
   * Parameters the container is reached through (`handle(req, res, sessions)` → the callee's
   * `sessions`): their declared types and the values written through them count for the container.
   */
  aliases: ts.Node[];
  /**
   * Why it is per-session: `key` (keyed by, holding or searched for a session id), `type` (its declared
   * values are sessionful transports or servers), `holder` (a field or variable of a store type whose
   * implementation in the program keeps a session registry in memory), `objects` (it collects the
   * objects created once per session: a framework's own list of sessions).
   */
  reason: 'key' | 'type' | 'holder' | 'objects';
  /** For `holder`: the store class that keeps the registry. */
  store?: ts.ClassLikeDeclaration;
  /** For `objects`: the per-session class whose instances it collects. */
  objectClass?: ts.ClassLikeDeclaration;
  /**
   * For `objects`: it collects the sessionful transports or MCP servers that per-session code makes (`this.servers.push(server)`
   * in a factory the session-opening block calls), one entry per session but not keyed by its id: a registry no codemod rewrites.
   */
  sdkObjects?: boolean;
  /** Keyed by something else (a task or approval id), but every entry carries the session id of its session. */
  entriesCarrySession?: boolean;
  /**
   * Keyed by a function object made once per session instead of an id (a per-session notifier, see
   * SessionScope `sessionHandles`): the key names its session but cannot go into a shared store.
   */
  handleKey?: ts.Expression;
}

const KEY_METHODS = new Set(['set', 'get', 'has', 'delete', 'add', 'peek']);
const SEARCH_METHODS = new Set(['find', 'findIndex', 'findLast', 'findLastIndex', 'filter', 'some', 'every']);
const COLLECTION_CLASSES: Record<string, ContainerKind> = {
  Map: 'map',
  Set: 'set',
  WeakMap: 'weakmap',
  WeakSet: 'set',
  Array: 'array',
  LRUCache: 'cache',
  LRU: 'cache',
  QuickLRU: 'cache',
  NodeCache: 'cache',
  TTLCache: 'cache',
};
const TYPE_NAMES: Record<string, ContainerKind> = {
  ...COLLECTION_CLASSES,
  ReadonlyMap: 'map',
  ReadonlySet: 'set',
  Record: 'object',
  ReadonlyArray: 'array',
};
const TIMER_FUNCTIONS = new Set(['setInterval', 'setTimeout', 'setImmediate']);
const PLAIN_CLASSES = new Set(['Map', 'Set', 'Date', 'Array', 'Object', 'URL']);
const NON_SERIALIZABLE_TYPE = /\b(Timeout|Timer|Interval|Socket|WebSocket|ServerResponse|IncomingMessage|Response|Request|AbortController|EventEmitter|ChildProcess|Promise)\b|=>/;
/** Collection types whose last type argument (or element) is the stored value. */
const VALUE_TYPE_ARGUMENT = new Set(['Map', 'ReadonlyMap', 'WeakMap', 'Record', 'LRUCache', 'LRU', 'QuickLRU', 'TTLCache', 'Set', 'ReadonlySet', 'WeakSet', 'Array', 'ReadonlyArray']);

interface Write {
  receiver: ts.Expression;
  value: ts.Expression;
}

type Declaration = ts.VariableDeclaration | ts.PropertyDeclaration | ts.PropertyAssignment | ts.ParameterDeclaration;

export class SessionContainerIndex {
  private readonly byNode = new Map<ts.Node, SessionContainer>();
  private readonly writes: Write[] = [];
  private readonly nestedIds = new Set<ts.Node>();
  /** Container declarations with declared value types, checked for transports and servers in `finish`. */
  private readonly typed: Array<{ decl: Declaration; kind: ContainerKind; valueTypes: ts.TypeNode[] }> = [];
  /** Class fields and module variables declared with a class or interface type: maybe holders of a class-based store. */
  private readonly holderCandidates: Declaration[] = [];
  /** Destructuring defaults and object-literal properties initialized with `new C()`: maybe holders of a class-based store. */
  private readonly storeCreations: Array<ts.BindingElement | ts.PropertyAssignment> = [];
  private readonly parameterRoots = new Map<ts.ParameterDeclaration, SessionContainer[]>();
  /** Containers found only because their values carry a session id (keyed by something else). */
  private readonly byValueOnly = new Set<ts.Node>();
  /** Containers keyed by, or searched for, a session id. */
  private readonly byKey = new Set<ts.Node>();

  constructor(private readonly flow: SessionFlow) {}

  /** Called by the engine for every node of every analyzed file. */
  visit(node: ts.Node): void {
    // `sessions = new Sessions<T>()` as a destructuring default or an options property: maybe where a
    // class-based store is chosen (decided in `finish`, once the store classes are known).
    if (ts.isNewExpression(node) && (ts.isBindingElement(node.parent) || ts.isPropertyAssignment(node.parent)) && node.parent.initializer === node) {
      this.storeCreations.push(node.parent);
    }
    if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression)) {
      const method = node.expression.name.text;
      const receiver = node.expression.expression;
      const [first, second] = node.arguments;
      if (first && (method === 'set' || method === 'push' || method === 'add' || method === 'unshift')) {
        this.writes.push({ receiver, value: method === 'set' && second ? second : first });
      }
      if (first && KEY_METHODS.has(method) && this.flow.isSessionId(first)) {
        const found = this.resolve(receiver);
        for (const c of found) this.byKey.add(c.node);
        if (this.isFunctionValue(first)) for (const c of found) c.handleKey ??= first;
        if (method === 'add') for (const c of found) this.nestedIds.add(c.node);
        return;
      }
      // `a.push({ sessionId, … })`, `m.set(k, { sessionId, … })`: its entries belong to sessions.
      const stored = method === 'set' ? second : method === 'push' || method === 'unshift' ? first : undefined;
      if (stored && this.carriesSessionId(stored)) {
        // A map keyed by something else (`set(taskId, { sessionId, … })`) is not a session registry.
        for (const c of this.resolve(receiver)) this.byValueOnly.add(c.node);
        return;
      }
      if (first && SEARCH_METHODS.has(method) && this.predicateMatchesSession(first)) {
        for (const c of this.resolve(receiver)) this.byKey.add(c.node);
      }
      return;
    }
    if (ts.isElementAccessExpression(node) && this.flow.isSessionId(node.argumentExpression)) {
      const parent = node.parent;
      for (const c of this.resolve(node.expression)) this.byKey.add(c.node);
      if (ts.isBinaryExpression(parent) && parent.left === node && parent.operatorToken.kind === ts.SyntaxKind.EqualsToken) {
        this.writes.push({ receiver: node.expression, value: parent.right });
      }
      return;
    }
    if (ts.isVariableDeclaration(node) || ts.isPropertyDeclaration(node) || ts.isPropertyAssignment(node) || (ts.isParameter(node) && ts.isParameterPropertyDeclaration(node, node.parent))) {
      this.collectDeclaration(node);
    }
  }

  /** Classifies the containers found; call once after every file was visited. */
  finish(): SessionContainer[] {
    for (const { decl, kind, valueTypes } of this.typed) {
      const node = declName(decl);
      if (this.byNode.has(node) || !this.flow.isStatefulFile(decl.getSourceFile()) || !this.isLongLived(decl)) continue;
      if (!valueTypes.some((t) => this.typeNodeHoldsRegistry(t, 0))) continue;
      this.byNode.set(node, this.container(node, kind, 'type'));
    }
    // Entries that merely carry a session id make state only in a container that outlives the request.
    for (const node of this.byValueOnly) {
      const decl = node.parent;
      if (this.byKey.has(node) || !decl) continue;
      if (!(ts.isVariableDeclaration(decl) || ts.isPropertyDeclaration(decl) || ts.isPropertyAssignment(decl) || ts.isParameter(decl)) || !this.isLongLived(decl)) this.byNode.delete(node);
    }
    this.collectSessionObjectLists();
    const names = new Set<string>();
    for (const c of this.byNode.values()) {
      names.add(c.name);
      for (const a of c.aliases) names.add(displayName(a));
    }
    for (const w of this.writes) {
      const name = receiverName(w.receiver);
      if (!name || !names.has(name)) continue;
      for (const c of this.lookup(w.receiver)) {
        const known = this.byNode.get(c.node);
        if (known) known.values.push(w.value);
      }
    }
    for (const c of this.byNode.values()) {
      c.idSet = this.nestedIds.has(c.node) || (c.kind === 'set' && c.values.length > 0 && c.values.every((v) => this.flow.isSessionId(v)));
      c.isRegistry =
        c.reason === 'type' ||
        !!c.sdkObjects ||
        (!c.idSet && c.reason !== 'objects' && !(this.byValueOnly.has(c.node) && !this.byKey.has(c.node)) && ([c.node, ...c.aliases].some((n) => this.declaredTypeHoldsRegistry(n)) || c.values.some((v) => this.holdsRegistryValue(v, 0))));
      c.serializable = !c.isRegistry && !c.handleKey && c.values.every((v) => this.isSerializable(v));
      if (this.byValueOnly.has(c.node) && !this.byKey.has(c.node)) c.entriesCarrySession = true;
    }
    this.collectHolders();
    return [...this.byNode.values()];
  }

  /**
   * Long-lived collections that per-session objects are added to (`Context.all.add(this)`, `this.#sessions.push(session)`),
   * and those per-session code adds its sessionful transports or MCP servers to (`this.servers.push(server)`).
   */
  private collectSessionObjectLists(): void {
    const scope = sessionScope(this.flow);
    if (scope.classes.size === 0 && scope.regions.length === 0) return;
    for (const w of this.writes) {
      const cls = this.sessionObjectClass(w.value, scope);
      const perSession = !cls && scope.isPerSessionCode(w.value);
      if (!cls && !perSession) continue;
      for (const c of this.lookup(w.receiver)) {
        const decl = c.node.parent;
        if (this.byNode.has(c.node) || !decl || !(ts.isVariableDeclaration(decl) || ts.isPropertyDeclaration(decl) || ts.isParameter(decl)) || !this.isLongLived(decl)) continue;
        // What per-session code adds is a transport or server (by its type, or the collection's declared one, which
        // names the SDK's import when the SDK is not installed); a collection declared in per-session code lives as long as its session.
        const sdkObjects = perSession && !scope.isPerSessionCode(decl) && (this.holdsRegistryValue(w.value, 0) || this.declaredTypeHoldsRegistry(c.node));
        if (!cls && !sdkObjects) continue;
        this.byNode.set(c.node, cls ? { ...c, reason: 'objects', objectClass: cls } : { ...c, reason: 'objects', sdkObjects: true });
      }
    }
  }

  /** The per-session class a stored value is an instance of (`new Session()`, a variable holding one, `this` in its members). */
  private sessionObjectClass(value: ts.Expression, scope: SessionScope): ts.ClassLikeDeclaration | undefined {
    const e = skipOuter(value);
    if (e.kind === ts.SyntaxKind.ThisKeyword) {
      const cls = ts.findAncestor(e, ts.isClassLike);
      return cls && scope.classes.has(cls) ? cls : undefined;
    }
    if (ts.isNewExpression(e)) {
      const cls = scope.projectClassOf(e);
      return cls && scope.classes.has(cls) ? cls : undefined;
    }
    if (ts.isIdentifier(e)) {
      const decl = this.flow.symbolAt(e)?.valueDeclaration;
      if (decl && ts.isVariableDeclaration(decl) && decl.initializer && decl.initializer !== value) return this.sessionObjectClass(decl.initializer, scope);
    }
    return undefined;
  }

  private container(node: ts.Node, kind: ContainerKind, reason: SessionContainer['reason']): SessionContainer {
    return { node, name: displayName(node), kind, values: [], isRegistry: false, serializable: true, idSet: false, aliases: [], reason };
  }

  // ---------------------------------------------------------------- declarations

  private collectDeclaration(decl: Declaration): void {
    if (!decl.name || (!ts.isIdentifier(decl.name) && !ts.isPrivateIdentifier(decl.name) && !ts.isStringLiteral(decl.name))) return;
    const init = decl.initializer ? skipOuter(decl.initializer) : undefined;
    const asType = decl.initializer && ts.isAsExpression(decl.initializer) ? decl.initializer.type : undefined;
    const typeNode = ('type' in decl ? decl.type : undefined) ?? asType;
    let kind = typeNode ? collectionOfTypeNode(typeNode) : undefined;
    let valueTypes = typeNode ? containerValueTypeNodes(typeNode) : [];
    if (!kind && init) kind = collectionOfExpression(init);
    if (valueTypes.length === 0 && init && ts.isNewExpression(init) && init.typeArguments?.length) {
      valueTypes = [init.typeArguments[init.typeArguments.length - 1]!];
    }
    // Keyed collections only: a Set or array of every transport (for shutdown) is not looked up per session.
    if (kind && kind !== 'set' && kind !== 'array' && valueTypes.length > 0) {
      this.typed.push({ decl, kind, valueTypes });
      return;
    }
    // `private store: ISessionStore<…>`, `let sessions: SessionStore`: maybe a holder of a class-based store.
    if (!kind && typeNode && ts.isTypeReferenceNode(typeNode) && (ts.isPropertyDeclaration(decl) || ts.isParameter(decl) || (ts.isVariableDeclaration(decl) && isModuleLevel(decl)))) {
      this.holderCandidates.push(decl);
    }
  }

  /** Lives longer than one request: module level, a class field, a property of such an object, or a local that closures capture. */
  private isLongLived(decl: Declaration): boolean {
    if (ts.isPropertyDeclaration(decl) || ts.isParameter(decl)) return true;
    if (ts.isPropertyAssignment(decl)) {
      let n: ts.Node = decl.parent;
      while (ts.isObjectLiteralExpression(n) || ts.isAsExpression(n) || ts.isSatisfiesExpression(n) || ts.isParenthesizedExpression(n) || ts.isPropertyAssignment(n)) n = n.parent;
      return (ts.isVariableDeclaration(n) || ts.isPropertyDeclaration(n)) && this.isLongLived(n);
    }
    if (isModuleLevel(decl)) return true;
    const fn = enclosingFunction(decl);
    if (!fn) return true; // a block at module level
    return ts.isIdentifier(decl.name) && this.flow.isCapturedByClosure(decl.name, fn);
  }

  /**
   * Class-based stores: a class whose field is a session registry (`class SessionStore { private
   * sessions = {} }`) is reported where it is, and a field or module variable typed with the store's
   * interface or base class (`private readonly sessionStore: ISessionStore<T>`) is where the server
   * chose that in-memory store.
   */
  private collectHolders(): void {
    const stores = new Map<ts.Symbol, ts.ClassLikeDeclaration>();
    for (const c of this.byNode.values()) {
      const decl = c.node.parent;
      const cls = decl && (ts.isPropertyDeclaration(decl) || ts.isParameter(decl)) ? (ts.isParameter(decl) ? decl.parent.parent : decl.parent) : undefined;
      if (c.isRegistry && cls && ts.isClassLike(cls) && cls.name) {
        const symbol = this.flow.symbolAt(cls.name);
        if (symbol) stores.set(symbol, cls);
      }
    }
    if (stores.size === 0) return;
    for (const decl of this.storeCreations) {
      const made = skipOuter((decl.initializer as ts.NewExpression).expression);
      const store = stores.get(this.flow.symbolAt(ts.isPropertyAccessExpression(made) ? made.name : made)!);
      if (!store || isInside(decl, store) || !this.flow.isStatefulFile(decl.getSourceFile())) continue;
      const node = declName(decl);
      if (!this.byNode.has(node)) this.byNode.set(node, { ...this.container(node, 'store', 'holder'), isRegistry: true, serializable: false, store });
    }
    for (const decl of this.holderCandidates) {
      const typeNode = (decl as ts.PropertyDeclaration).type;
      if (!typeNode || !ts.isTypeReferenceNode(typeNode) || !this.flow.isStatefulFile(decl.getSourceFile())) continue;
      const name = ts.isIdentifier(typeNode.typeName) ? typeNode.typeName : typeNode.typeName.right;
      const typeSymbol = this.flow.symbolAt(name);
      if (!typeSymbol?.declarations?.length || stores.has(typeSymbol)) continue;
      const store = this.flow.subclassesOf(typeSymbol).find((cls) => cls.name && stores.has(this.flow.symbolAt(cls.name)!));
      if (!store || isInside(decl, store)) continue;
      const node = declName(decl);
      if (this.byNode.has(node)) continue;
      this.byNode.set(node, { ...this.container(node, 'store', 'holder'), isRegistry: true, serializable: false, store });
    }
  }

  // ---------------------------------------------------------------- resolution

  private resolve(receiver: ts.Expression): SessionContainer[] {
    const found = this.lookup(receiver);
    return found.map((c) => {
      const existing = this.byNode.get(c.node);
      if (existing) {
        for (const a of c.aliases) if (!existing.aliases.includes(a)) existing.aliases.push(a);
        return existing;
      }
      this.byNode.set(c.node, c);
      return c;
    });
  }

  private lookup(receiver: ts.Expression, depth = 0): SessionContainer[] {
    if (depth > 4) return [];
    const r = skipOuter(receiver);
    let nameNode: ts.Node | undefined;
    if (ts.isIdentifier(r)) nameNode = r;
    else if (ts.isPropertyAccessExpression(r)) nameNode = r.name;
    else if (ts.isCallExpression(r) && ts.isPropertyAccessExpression(r.expression) && r.expression.name.text === 'get') {
      // byUri.get(uri).add(sid): nested container, the state is byUri
      return this.lookup(r.expression.expression, depth + 1);
    }
    if (!nameNode) return [];
    const symbol = this.flow.symbolAt(nameNode);
    if (!symbol) return [];
    const existing = [...(symbol.declarations ?? [])].map((d) => this.byNode.get(declName(d))).find(Boolean);
    if (existing) return [existing];
    for (const decl of symbol.declarations ?? []) {
      // A local alias of an element of another container: follow to the root container.
      if (ts.isVariableDeclaration(decl) && decl.initializer) {
        const nested = this.nestedRoot(decl.initializer, depth);
        if (nested.length > 0) return nested;
      }
      const kind = this.containerKind(decl, symbol);
      if (kind) {
        const node = declName(decl);
        return [this.byNode.get(node) ?? this.container(node, kind, 'key')];
      }
      // A parameter: the containers its callers pass (`handle(req, res, sessions)`).
      if (ts.isParameter(decl) && ts.isIdentifier(decl.name) && !decl.dotDotDotToken && !ts.isParameterPropertyDeclaration(decl, decl.parent)) {
        return this.parameterContainers(decl, depth);
      }
    }
    return [];
  }

  private parameterContainers(param: ts.ParameterDeclaration, depth: number): SessionContainer[] {
    const cached = this.parameterRoots.get(param);
    if (cached) return cached;
    const roots: SessionContainer[] = [];
    this.parameterRoots.set(param, roots);
    const fn = param.parent;
    if (!isFunctionLike(fn)) return roots;
    const index = fn.parameters.indexOf(param);
    for (const site of this.flow.callSitesOf(fn)) {
      const arg = site.arguments?.[index];
      if (!arg || ts.isSpreadElement(arg)) continue;
      for (const root of this.lookup(arg, depth + 1)) {
        if (!root.aliases.includes(param.name)) root.aliases.push(param.name);
        if (!roots.includes(root)) roots.push(root);
      }
    }
    return roots;
  }

  /** `X.get(k)`, `X.get(k) ?? new Set()`, `X.has(k) ? X.get(k) : new Set()` → the container X. */
  private nestedRoot(init: ts.Expression, depth: number): SessionContainer[] {
    const e = skipOuter(init);
    if (ts.isCallExpression(e) && ts.isPropertyAccessExpression(e.expression) && e.expression.name.text === 'get') {
      return this.lookup(e.expression.expression, depth + 1);
    }
    if (ts.isConditionalExpression(e)) {
      const t = this.nestedRoot(e.whenTrue, depth);
      return t.length > 0 ? t : this.nestedRoot(e.whenFalse, depth);
    }
    if (ts.isBinaryExpression(e) && (e.operatorToken.kind === ts.SyntaxKind.QuestionQuestionToken || e.operatorToken.kind === ts.SyntaxKind.BarBarToken)) {
      return this.nestedRoot(e.left, depth);
    }
    return [];
  }

  private containerKind(decl: ts.Declaration, symbol: ts.Symbol): ContainerKind | undefined {
    let init: ts.Expression | undefined;
    let type: ts.TypeNode | undefined;
    if (ts.isVariableDeclaration(decl) || ts.isPropertyDeclaration(decl)) {
      init = decl.initializer;
      type = decl.type;
    } else if (ts.isPropertyAssignment(decl)) init = decl.initializer;
    else if (ts.isPropertySignature(decl)) type = decl.type;
    else if (ts.isBinaryExpression(decl)) init = decl.right;
    else if (ts.isParameter(decl)) {
      // constructor(private sessions = new Map()) — a parameter property
      if (!ts.isParameterPropertyDeclaration(decl, decl.parent)) return undefined;
      init = decl.initializer;
      type = decl.type;
    } else return undefined;
    const fromInit = init ? collectionOfExpression(init) : undefined;
    if (fromInit) return fromInit;
    if (init && !type) {
      // `const x = createStore()` etc.: not provably in memory
      return undefined;
    }
    const fromType = type ? collectionOfTypeNode(type) : undefined;
    if (fromType) return fromType;
    if (!type && !init) {
      // A field declared without initializer or annotation: ask the checker, then the assignments.
      for (const v of this.flow.assignments.get(symbol) ?? []) {
        const k = collectionOfExpression(v);
        if (k) return k;
      }
      return this.collectionOfType(decl);
    }
    return undefined;
  }

  private collectionOfType(decl: ts.Declaration): ContainerKind | undefined {
    try {
      const type = this.flow.checker.getTypeAtLocation(declName(decl));
      const name = type.getSymbol()?.getName();
      if (name && TYPE_NAMES[name]) return TYPE_NAMES[name];
      if (this.flow.checker.getIndexInfoOfType(type, ts.IndexKind.String)) return 'object';
    } catch {
      /* no type information */
    }
    return undefined;
  }

  // ---------------------------------------------------------------- predicates

  /** A key whose value is a function (a per-session callback standing for its session), by its type. */
  private isFunctionValue(key: ts.Expression): boolean {
    try {
      return this.flow.checker.getTypeAtLocation(key).getCallSignatures().length > 0;
    } catch {
      return false;
    }
  }

  private carriesSessionId(value: ts.Expression): boolean {
    const e = skipOuter(value);
    if (!ts.isObjectLiteralExpression(e)) return false;
    return e.properties.some((p) => {
      if (ts.isPropertyAssignment(p)) return this.flow.isSessionId(p.initializer);
      if (ts.isShorthandPropertyAssignment(p)) {
        return this.flow.isSessionIdSymbol(this.flow.checker.getShorthandAssignmentValueSymbol(p));
      }
      return false;
    });
  }

  private predicateMatchesSession(arg: ts.Expression): boolean {
    const fn = skipOuter(arg);
    if (!ts.isArrowFunction(fn) && !ts.isFunctionExpression(fn)) return false;
    let found = false;
    const visit = (n: ts.Node): void => {
      if (found) return;
      if (
        ts.isBinaryExpression(n) &&
        (n.operatorToken.kind === ts.SyntaxKind.EqualsEqualsEqualsToken || n.operatorToken.kind === ts.SyntaxKind.EqualsEqualsToken) &&
        (this.flow.isSessionId(n.left) || this.flow.isSessionId(n.right))
      ) {
        found = true;
        return;
      }
      ts.forEachChild(n, visit);
    };
    visit(fn.body);
    return found;
  }

  /** The declared values of the container (or of a parameter it is passed through) are transports or servers. */
  private declaredTypeHoldsRegistry(node: ts.Node): boolean {
    const decl = node.parent;
    const typeNode =
      decl && (ts.isVariableDeclaration(decl) || ts.isPropertyDeclaration(decl) || ts.isPropertySignature(decl) || ts.isParameter(decl)) ? decl.type : undefined;
    if (typeNode && containerValueTypeNodes(typeNode).some((t) => this.typeNodeHoldsRegistry(t, 0))) return true;
    try {
      const type = this.flow.checker.getTypeAtLocation(node);
      const args = (type as ts.TypeReference).typeArguments ?? this.flow.checker.getTypeArguments?.(type as ts.TypeReference) ?? [];
      const candidates = [...args];
      const index = this.flow.checker.getIndexInfoOfType(type, ts.IndexKind.String);
      if (index) candidates.push(index.type);
      const element = this.flow.checker.getIndexInfoOfType(type, ts.IndexKind.Number);
      if (element) candidates.push(element.type);
      return candidates.some((t) => this.typeHoldsRegistry(t, 0));
    } catch {
      return false;
    }
  }

  /** A type node that is, or holds in a property, a transport or server (imports, aliases, interfaces, literals). */
  private typeNodeHoldsRegistry(node: ts.TypeNode, depth: number): boolean {
    if (depth > 3) return false;
    if (isRegistryValueKind(this.flow.sdk.kindOfTypeNode(node))) return true;
    if (ts.isUnionTypeNode(node) || ts.isIntersectionTypeNode(node)) return node.types.some((t) => this.typeNodeHoldsRegistry(t, depth));
    if (ts.isParenthesizedTypeNode(node)) return this.typeNodeHoldsRegistry(node.type, depth);
    if (ts.isArrayTypeNode(node)) return this.typeNodeHoldsRegistry(node.elementType, depth + 1);
    if (ts.isTypeLiteralNode(node)) return node.members.some((m) => ts.isPropertySignature(m) && !!m.type && this.typeNodeHoldsRegistry(m.type, depth + 1));
    if (ts.isTypeReferenceNode(node)) {
      const name = ts.isIdentifier(node.typeName) ? node.typeName : node.typeName.right;
      const symbol = this.flow.symbolAt(name);
      for (const d of symbol?.declarations ?? []) {
        if (ts.isInterfaceDeclaration(d) && d.getSourceFile() && !d.getSourceFile().isDeclarationFile) {
          if (d.members.some((m) => ts.isPropertySignature(m) && !!m.type && this.typeNodeHoldsRegistry(m.type, depth + 1))) return true;
        } else if (ts.isTypeAliasDeclaration(d) && !d.getSourceFile().isDeclarationFile) {
          if (this.typeNodeHoldsRegistry(d.type, depth + 1)) return true;
        }
      }
    }
    return false;
  }

  /** A checker type that is, or holds in a property, a transport or server; type parameters by their instantiations. */
  private typeHoldsRegistry(type: ts.Type, depth: number): boolean {
    if (type.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return false;
    if (isRegistryValueKind(this.flow.sdk.kindOfType(type))) return true;
    if (type.flags & ts.TypeFlags.TypeParameter) return this.instantiationsHoldRegistry(type as ts.TypeParameter);
    if (type.isUnion()) return type.types.some((t) => this.typeHoldsRegistry(t, depth));
    if (depth > 1) return false;
    return type.getProperties().some((p) => {
      const decl = p.valueDeclaration;
      if (!decl || decl.getSourceFile().isDeclarationFile) return false;
      // A declared type the checker cannot resolve (the SDK not installed) still names its import.
      const typeNode = ts.isPropertyDeclaration(decl) || ts.isPropertySignature(decl) || ts.isParameter(decl) ? decl.type : undefined;
      if (typeNode && isRegistryValueKind(this.flow.sdk.kindOfTypeNode(typeNode))) return true;
      return this.typeHoldsRegistry(this.flow.checker.getTypeOfSymbolAtLocation(p, decl), depth + 1);
    });
  }

  /** `class SessionStore<T extends { close(): … }>` holds what `new SessionStore<StreamableHTTPServerTransport>()` passes (or infers) for T. */
  private instantiationsHoldRegistry(param: ts.TypeParameter): boolean {
    const decl = param.getSymbol()?.declarations?.[0];
    const owner = decl?.parent;
    if (!decl || !ts.isTypeParameterDeclaration(decl) || !owner || !ts.isClassLike(owner)) return false;
    const index = owner.typeParameters?.indexOf(decl) ?? -1;
    if (index < 0) return false;
    return this.flow.instantiationsOf(owner).some((site) => {
      const explicit = site.typeArguments?.[index];
      if (explicit) return this.typeNodeHoldsRegistry(explicit, 1);
      try {
        const inferred = this.flow.checker.getTypeArguments(this.flow.checker.getTypeAtLocation(site) as ts.TypeReference)[index];
        return !!inferred && !(inferred.flags & ts.TypeFlags.TypeParameter) && this.typeHoldsRegistry(inferred, 1);
      } catch {
        return false;
      }
    });
  }

  #sessionful: Set<ts.Node> | undefined;

  /** `new X({ sessionIdGenerator: … })` and `new SSEServerTransport(…)`: constructions of sessionful transports. */
  private sessionfulConstructions(): Set<ts.Node> {
    if (!this.#sessionful) {
      this.#sessionful = new Set<ts.Node>(this.flow.sseTransports);
      for (const prop of this.flow.statefulGenerators) {
        const options = prop.parent;
        if (ts.isObjectLiteralExpression(options) && ts.isNewExpression(options.parent)) this.#sessionful.add(options.parent);
      }
    }
    return this.#sessionful;
  }

  private holdsRegistryValue(value: ts.Expression, depth: number): boolean {
    if (depth > 3) return false;
    const e = skipOuter(value);
    // A transport by its type, or by how it is built: with a session id generator (framework transports
    // such as `@hono/mcp`'s, whose package may not be installed).
    if (ts.isNewExpression(e)) return isRegistryValueKind(this.flow.sdk.kindOfValue(e)) || this.sessionfulConstructions().has(e);
    if (ts.isObjectLiteralExpression(e)) {
      return e.properties.some((p) => {
        if (ts.isPropertyAssignment(p)) return this.holdsRegistryValue(p.initializer, depth + 1);
        if (ts.isShorthandPropertyAssignment(p)) return this.holdsRegistryValue(p.name, depth + 1);
        return false;
      });
    }
    if (ts.isIdentifier(e) || ts.isPropertyAccessExpression(e)) {
      const symbol = ts.isShorthandPropertyAssignment(e.parent) && e.parent.name === e
        ? this.flow.checker.getShorthandAssignmentValueSymbol(e.parent)
        : this.flow.symbolAt(ts.isPropertyAccessExpression(e) ? e.name : e);
      if (symbol) {
        for (const decl of symbol.declarations ?? []) {
          if (ts.isVariableDeclaration(decl) && decl.initializer && this.holdsRegistryValue(decl.initializer, depth + 1)) return true;
          if ((ts.isVariableDeclaration(decl) || ts.isParameter(decl) || ts.isPropertyDeclaration(decl)) && decl.type && this.typeNodeHoldsRegistry(decl.type, 1)) return true;
        }
        for (const v of this.flow.assignments.get(symbol) ?? []) if (this.holdsRegistryValue(v, depth + 1)) return true;
      }
      try {
        if (this.typeHoldsRegistry(this.flow.checker.getTypeAtLocation(e), 1)) return true;
      } catch {
        /* no type information */
      }
    }
    return false;
  }

  private isSerializable(value: ts.Expression): boolean {
    const e = skipOuter(value);
    if (ts.isArrowFunction(e) || ts.isFunctionExpression(e) || ts.isClassExpression(e)) return false;
    if (ts.isCallExpression(e) && TIMER_FUNCTIONS.has(calleeName(e) ?? '')) return false;
    if (ts.isNewExpression(e)) return PLAIN_CLASSES.has(calleeName(e) ?? '');
    if (ts.isObjectLiteralExpression(e)) {
      return e.properties.every((p) => {
        if (ts.isPropertyAssignment(p)) return this.isSerializable(p.initializer);
        if (ts.isShorthandPropertyAssignment(p)) return this.isSerializable(p.name);
        return !ts.isMethodDeclaration(p) && !ts.isGetAccessor(p) && !ts.isSetAccessor(p);
      });
    }
    if (ts.isArrayLiteralExpression(e)) return e.elements.every((x) => this.isSerializable(x));
    if (ts.isIdentifier(e)) {
      const symbol = ts.isShorthandPropertyAssignment(e.parent) && e.parent.name === e
        ? this.flow.checker.getShorthandAssignmentValueSymbol(e.parent)
        : this.flow.symbolAt(e);
      const decl = symbol?.valueDeclaration;
      if (decl && (ts.isFunctionDeclaration(decl) || ts.isClassDeclaration(decl))) return false;
      if (decl && ts.isVariableDeclaration(decl) && decl.initializer && decl.initializer !== value) {
        if (!this.isSerializable(decl.initializer)) return false;
      }
    }
    try {
      const type = this.flow.checker.getTypeAtLocation(e);
      const text = this.flow.checker.typeToString(type);
      if (NON_SERIALIZABLE_TYPE.test(text) || isRegistryValueKind(this.flow.sdk.kindOfType(type)) || this.hasBehaviour(type)) return false;
    } catch {
      /* no type information */
    }
    return true;
  }

  /** A project type with call signatures or methods (a handle such as `{ cancel(): void; restart(): void }`), not plain data. */
  private hasBehaviour(type: ts.Type): boolean {
    if (type.getCallSignatures().length > 0) return true;
    const decl = type.getSymbol()?.declarations?.[0] ?? type.aliasSymbol?.declarations?.[0];
    if (!decl || decl.getSourceFile().isDeclarationFile) return false;
    return type.getProperties().some((p) => {
      const d = p.valueDeclaration;
      if (!d) return false;
      if (ts.isMethodDeclaration(d) || ts.isMethodSignature(d)) return true;
      try {
        return this.flow.checker.getTypeOfSymbolAtLocation(p, d).getCallSignatures().length > 0;
      } catch {
        return false;
      }
    });
  }
}

/** The collection an initializer makes (`new Map()`, `{}`, `[]`, `Object.create(…)`), if any. */
export function collectionOfExpression(init: ts.Expression): ContainerKind | undefined {
  const e = skipOuter(init);
  if (ts.isNewExpression(e)) return COLLECTION_CLASSES[calleeName(e) ?? ''];
  if (ts.isObjectLiteralExpression(e)) return 'object';
  if (ts.isArrayLiteralExpression(e)) return 'array';
  if (ts.isCallExpression(e) && e.expression.getText() === 'Object.create') return 'object';
  return undefined;
}

/** The collection a declared type names (`Map<…>`, `T[]`, an index signature, `Record<…>`), if any. */
export function collectionOfTypeNode(type: ts.TypeNode): ContainerKind | undefined {
  if (ts.isArrayTypeNode(type)) return 'array';
  if (ts.isTypeLiteralNode(type) && type.members.some(ts.isIndexSignatureDeclaration)) return 'object';
  if (ts.isMappedTypeNode(type)) return 'object';
  if (ts.isTypeReferenceNode(type)) {
    const name = ts.isIdentifier(type.typeName) ? type.typeName.text : type.typeName.right.text;
    return TYPE_NAMES[name];
  }
  if (ts.isUnionTypeNode(type)) {
    for (const t of type.types) {
      const k = collectionOfTypeNode(t);
      if (k) return k;
    }
  }
  return undefined;
}

/** The type nodes of the values a container type holds: `Map<K, V>` → V, `T[]` → T, `{ [k: string]: V }` → V. */
function containerValueTypeNodes(type: ts.TypeNode): ts.TypeNode[] {
  if (ts.isArrayTypeNode(type)) return [type.elementType];
  if (ts.isTypeLiteralNode(type)) return type.members.filter(ts.isIndexSignatureDeclaration).map((m) => m.type);
  if (ts.isMappedTypeNode(type)) return type.type ? [type.type] : [];
  if (ts.isTypeReferenceNode(type)) {
    const name = ts.isIdentifier(type.typeName) ? type.typeName.text : type.typeName.right.text;
    const args = type.typeArguments;
    return VALUE_TYPE_ARGUMENT.has(name) && args?.length ? [args[args.length - 1]!] : [];
  }
  if (ts.isUnionTypeNode(type)) return type.types.flatMap(containerValueTypeNodes);
  return [];
}

function declName(decl: ts.Node): ts.Node {
  if (ts.isBinaryExpression(decl)) return ts.isPropertyAccessExpression(decl.left) ? decl.left.name : decl.left;
  const name = (decl as ts.NamedDeclaration).name;
  return name ?? decl;
}

function displayName(node: ts.Node): string {
  if (ts.isIdentifier(node) || ts.isPrivateIdentifier(node) || ts.isStringLiteral(node)) return node.text;
  return node.getText();
}

function receiverName(receiver: ts.Expression): string | undefined {
  const r = skipOuter(receiver);
  if (ts.isIdentifier(r)) return r.text;
  if (ts.isPropertyAccessExpression(r)) return r.name.text;
  if (ts.isCallExpression(r) && ts.isPropertyAccessExpression(r.expression)) return receiverName(r.expression.expression);
  return undefined;
}
