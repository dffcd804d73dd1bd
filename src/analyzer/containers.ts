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
import { calleeName, skipOuter, type SessionFlow } from './session-flow.js';

export type ContainerKind = 'map' | 'set' | 'weakmap' | 'object' | 'array' | 'cache';

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
const TRANSPORT_TYPE = /(Transport|McpServer)\b|^Server$|\bServer</;
const TIMER_FUNCTIONS = new Set(['setInterval', 'setTimeout', 'setImmediate']);
const PLAIN_CLASSES = new Set(['Map', 'Set', 'Date', 'Array', 'Object', 'URL']);
const NON_SERIALIZABLE_TYPE = /\b(Timeout|Timer|Interval|Socket|WebSocket|ServerResponse|IncomingMessage|Response|Request|AbortController|EventEmitter|ChildProcess|Promise)\b|=>/;

interface Write {
  receiver: ts.Expression;
  value: ts.Expression;
}

export class SessionContainerIndex {
  private readonly byNode = new Map<ts.Node, SessionContainer>();
  private readonly writes: Write[] = [];
  private readonly nestedIds = new Set<ts.Node>();

  constructor(private readonly flow: SessionFlow) {}

  /** Called by the engine for every node of every analyzed file. */
  visit(node: ts.Node): void {
    if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression)) {
      const method = node.expression.name.text;
      const receiver = node.expression.expression;
      const [first, second] = node.arguments;
      if (first && (method === 'set' || method === 'push' || method === 'add' || method === 'unshift')) {
        this.writes.push({ receiver, value: method === 'set' && second ? second : first });
      }
      if (first && KEY_METHODS.has(method) && this.flow.isSessionId(first)) {
        const c = this.resolve(receiver);
        if (c && method === 'add') this.nestedIds.add(c.node);
        return;
      }
      if (first && (method === 'push' || method === 'unshift') && this.carriesSessionId(first)) {
        this.resolve(receiver);
        return;
      }
      if (first && SEARCH_METHODS.has(method) && this.predicateMatchesSession(first)) {
        this.resolve(receiver);
      }
      return;
    }
    if (ts.isElementAccessExpression(node) && this.flow.isSessionId(node.argumentExpression)) {
      const parent = node.parent;
      this.resolve(node.expression);
      if (ts.isBinaryExpression(parent) && parent.left === node && parent.operatorToken.kind === ts.SyntaxKind.EqualsToken) {
        this.writes.push({ receiver: node.expression, value: parent.right });
      }
    }
  }

  /** Classifies the containers found; call once after every file was visited. */
  finish(): SessionContainer[] {
    const byName = new Map<string, SessionContainer[]>();
    for (const c of this.byNode.values()) {
      const list = byName.get(c.name) ?? [];
      list.push(c);
      byName.set(c.name, list);
    }
    for (const w of this.writes) {
      const name = receiverName(w.receiver);
      if (!name || !byName.has(name)) continue;
      const c = this.lookup(w.receiver);
      if (c) c.values.push(w.value);
    }
    for (const c of this.byNode.values()) {
      c.idSet = this.nestedIds.has(c.node) || (c.kind === 'set' && c.values.every((v) => this.flow.isSessionId(v)));
      c.isRegistry = !c.idSet && (this.declaredTypeIsTransport(c.node) || c.values.some((v) => this.isTransportish(v, 0)));
      c.serializable = !c.isRegistry && c.values.every((v) => this.isSerializable(v));
    }
    return [...this.byNode.values()];
  }

  // ---------------------------------------------------------------- resolution

  private resolve(receiver: ts.Expression): SessionContainer | undefined {
    const c = this.lookup(receiver);
    if (!c) return undefined;
    const existing = this.byNode.get(c.node);
    if (existing) return existing;
    this.byNode.set(c.node, c);
    return c;
  }

  private lookup(receiver: ts.Expression, depth = 0): SessionContainer | undefined {
    if (depth > 4) return undefined;
    const r = skipOuter(receiver);
    let nameNode: ts.Node | undefined;
    if (ts.isIdentifier(r)) nameNode = r;
    else if (ts.isPropertyAccessExpression(r)) nameNode = r.name;
    else if (ts.isCallExpression(r) && ts.isPropertyAccessExpression(r.expression) && r.expression.name.text === 'get') {
      // byUri.get(uri).add(sid): nested container, the state is byUri
      return this.lookup(r.expression.expression, depth + 1);
    }
    if (!nameNode) return undefined;
    const symbol = this.flow.symbolAt(nameNode);
    if (!symbol) return undefined;
    const existing = [...(symbol.declarations ?? [])].map((d) => this.byNode.get(declName(d))).find(Boolean);
    if (existing) return existing;
    for (const decl of symbol.declarations ?? []) {
      // A local alias of an element of another container: follow to the root container.
      if (ts.isVariableDeclaration(decl) && decl.initializer) {
        const nested = this.nestedRoot(decl.initializer, depth);
        if (nested) return nested;
      }
      const kind = this.containerKind(decl, symbol);
      if (kind) {
        const node = declName(decl);
        return this.byNode.get(node) ?? { node, name: displayName(node), kind, values: [], isRegistry: false, serializable: true, idSet: false };
      }
    }
    return undefined;
  }

  /** `X.get(k)`, `X.get(k) ?? new Set()`, `X.has(k) ? X.get(k) : new Set()` → the container X. */
  private nestedRoot(init: ts.Expression, depth: number): SessionContainer | undefined {
    const e = skipOuter(init);
    if (ts.isCallExpression(e) && ts.isPropertyAccessExpression(e.expression) && e.expression.name.text === 'get') {
      return this.lookup(e.expression.expression, depth + 1);
    }
    if (ts.isConditionalExpression(e)) return this.nestedRoot(e.whenTrue, depth) ?? this.nestedRoot(e.whenFalse, depth);
    if (ts.isBinaryExpression(e) && (e.operatorToken.kind === ts.SyntaxKind.QuestionQuestionToken || e.operatorToken.kind === ts.SyntaxKind.BarBarToken)) {
      return this.nestedRoot(e.left, depth);
    }
    return undefined;
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

  private declaredTypeIsTransport(node: ts.Node): boolean {
    const decl = node.parent;
    const typeNode =
      decl && (ts.isVariableDeclaration(decl) || ts.isPropertyDeclaration(decl) || ts.isPropertySignature(decl) || ts.isParameter(decl)) ? decl.type : undefined;
    if (typeNode && TRANSPORT_TYPE.test(typeNode.getText())) return true;
    try {
      const type = this.flow.checker.getTypeAtLocation(node);
      const args = (type as ts.TypeReference).typeArguments ?? this.flow.checker.getTypeArguments?.(type as ts.TypeReference) ?? [];
      const candidates = [...args];
      const index = this.flow.checker.getIndexInfoOfType(type, ts.IndexKind.String);
      if (index) candidates.push(index.type);
      const element = this.flow.checker.getIndexInfoOfType(type, ts.IndexKind.Number);
      if (element) candidates.push(element.type);
      return candidates.some((t) => this.typeHoldsTransport(t, 0));
    } catch {
      return false;
    }
  }

  private typeHoldsTransport(type: ts.Type, depth: number): boolean {
    const text = this.flow.checker.typeToString(type);
    if (text === 'any' || text === 'unknown') return false;
    if (TRANSPORT_TYPE.test(text)) return true;
    if (depth > 1) return false;
    return type.getProperties().some((p) => {
      const decl = p.valueDeclaration;
      if (!decl) return false;
      return this.typeHoldsTransport(this.flow.checker.getTypeOfSymbolAtLocation(p, decl), depth + 1);
    });
  }

  private isTransportish(value: ts.Expression, depth: number): boolean {
    if (depth > 3) return false;
    const e = skipOuter(value);
    if (ts.isNewExpression(e)) return TRANSPORT_TYPE.test(calleeName(e) ?? '');
    if (ts.isObjectLiteralExpression(e)) {
      return e.properties.some((p) => {
        if (ts.isPropertyAssignment(p)) return this.isTransportish(p.initializer, depth + 1);
        if (ts.isShorthandPropertyAssignment(p)) return this.isTransportish(p.name, depth + 1);
        return false;
      });
    }
    if (ts.isIdentifier(e) || ts.isPropertyAccessExpression(e)) {
      const symbol = ts.isShorthandPropertyAssignment(e.parent) && e.parent.name === e
        ? this.flow.checker.getShorthandAssignmentValueSymbol(e.parent)
        : this.flow.symbolAt(ts.isPropertyAccessExpression(e) ? e.name : e);
      if (symbol) {
        for (const decl of symbol.declarations ?? []) {
          if (ts.isVariableDeclaration(decl) && decl.initializer && this.isTransportish(decl.initializer, depth + 1)) return true;
          if ((ts.isVariableDeclaration(decl) || ts.isParameter(decl) || ts.isPropertyDeclaration(decl)) && decl.type && TRANSPORT_TYPE.test(decl.type.getText())) return true;
        }
        for (const v of this.flow.assignments.get(symbol) ?? []) if (this.isTransportish(v, depth + 1)) return true;
      }
      try {
        const text = this.flow.checker.typeToString(this.flow.checker.getTypeAtLocation(e));
        if (text !== 'any' && TRANSPORT_TYPE.test(text)) return true;
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
      const text = this.flow.checker.typeToString(this.flow.checker.getTypeAtLocation(e));
      if (NON_SERIALIZABLE_TYPE.test(text) || TRANSPORT_TYPE.test(text)) return false;
    } catch {
      /* no type information */
    }
    return true;
  }
}

function collectionOfExpression(init: ts.Expression): ContainerKind | undefined {
  const e = skipOuter(init);
  if (ts.isNewExpression(e)) return COLLECTION_CLASSES[calleeName(e) ?? ''];
  if (ts.isObjectLiteralExpression(e)) return 'object';
  if (ts.isArrayLiteralExpression(e)) return 'array';
  if (ts.isCallExpression(e) && e.expression.getText() === 'Object.create') return 'object';
  return undefined;
}

function collectionOfTypeNode(type: ts.TypeNode): ContainerKind | undefined {
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
