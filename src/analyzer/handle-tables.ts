/**
 * Handle tables: process memory that callers reach through an id this process minted and handed out.
 *
 * A long-lived keyed container (a field of a class whose instances are not per-session objects, or a
 * module-level variable) is a handle table when an entry is written under a *minted handle*:
 * - a string a function makes itself, from none of its parameters (`randomUUID()`, `this.mintId()`,
 *   `String(++this.next)`), and returns to its caller (`return id`, `return { canvasId, … }`), from a
 *   function its class or module exposes (not `private`, not `#private`);
 * - or a parameter such a function passes that handle to (`this.provider.initCanvas(canvasId)` makes
 *   `initCanvas(canvasId) { this.canvases.set(canvasId, …) }` a write under the handle), two calls deep.
 * Nested containers count for their root (`let ids = this.byOwner.get(o); ids.add(canvasId)` writes
 * `byOwner`). Writes are `m.set(handle, v)`, `s.add(handle)` and `o[handle] = v`.
 *
 * Whoever holds the handle (a client given a canvas, job or upload id) names the entry in a later call,
 * and only this process has it: behind a round-robin load balancer that call reaches a replica that
 * answers "not found", whatever happens to the MCP session, and a restart loses every entry. This holds
 * whether or not a handler of the analyzed tree reaches the write (a service a template builds once and
 * hands to code built on it). A cache keyed by what the caller passes is no handle table (any replica
 * rebuilds it), nor is a handle that is a number (a listener or timer id used in-process) or that the
 * function keeps to itself.
 *
 * Fed by the rule walk (no walk of its own); the lookups follow declarations and the call-site index of
 * {@link SessionFlow}.
 */
import { ts } from 'ts-morph';
import { enclosingFunction, isFunctionLike, isInside, isModuleLevel, propertyNameText, returnedExpressions, skipOuter, type FunctionLike } from './ast.js';
import { collectionOfExpression, collectionOfTypeNode } from './containers.js';
import { sessionScope } from './session-scope.js';
import type { SessionFlow } from './session-flow.js';

export interface HandleTable {
  /** The container's declaration name (class field or module variable). */
  node: ts.Node;
  name: string;
  /** The class that holds it, for a field. */
  cls?: ts.ClassLikeDeclaration;
  /** Writes under a minted handle. */
  writes: ts.Node[];
  /** The function that mints the handle and returns it to its caller. */
  minter: FunctionLike;
}

interface KeyedWrite {
  write: ts.Node;
  receiver: ts.Expression;
  key: ts.Expression;
}

/** How many calls a handle is followed into (`acquire` → `initCanvas(canvasId)` → …). */
const MAX_PARAMETER_DEPTH = 2;

export class HandleTableIndex {
  private readonly keyed: KeyedWrite[] = [];
  /** Minting function of a handle symbol (`null`: not a handle). */
  private readonly minted = new Map<ts.Symbol, FunctionLike | null>();

  constructor(private readonly flow: SessionFlow) {}

  /** Records `m.set(k, v)`, `s.add(k)` and `o[k] = v` whose key is a plain name (the only keys a handle can be). */
  visit(node: ts.Node): void {
    if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression)) {
      const method = node.expression.name.text;
      const key = node.arguments[0];
      if (key && ts.isIdentifier(skipOuter(key)) && ((method === 'set' && node.arguments.length === 2) || (method === 'add' && node.arguments.length === 1))) {
        this.keyed.push({ write: node, receiver: node.expression.expression, key });
      }
    } else if (ts.isBinaryExpression(node) && node.operatorToken.kind === ts.SyntaxKind.EqualsToken) {
      const left = skipOuter(node.left);
      if (ts.isElementAccessExpression(left) && ts.isIdentifier(skipOuter(left.argumentExpression))) {
        this.keyed.push({ write: node, receiver: left.expression, key: left.argumentExpression });
      }
    }
  }

  /** The handle tables of the program, for writes in files `include` accepts. */
  tables(include: (node: ts.Node) => boolean): HandleTable[] {
    const byNode = new Map<ts.Node, HandleTable>();
    const scope = sessionScope(this.flow);
    for (const w of this.keyed) {
      if (!include(w.write)) continue;
      const minter = this.handleMinter(w.key, 0);
      if (!minter) continue;
      const root = this.rootContainer(w.receiver, 0);
      if (!root) continue;
      const cls = ts.isPropertyDeclaration(root.parent) || ts.isParameter(root.parent) ? ts.findAncestor(root.parent, ts.isClassLike) : undefined;
      // The fields of a per-session object live as long as its session: reported as session state.
      if (cls && scope.classes.has(cls)) continue;
      const table = byNode.get(root) ?? { node: root, name: propertyNameText(root as ts.PropertyName) ?? root.getText(), cls, writes: [], minter };
      table.writes.push(w.write);
      byNode.set(root, table);
    }
    return [...byNode.values()];
  }

  /** The function that minted the handle `key` holds, or undefined when `key` is no minted handle. */
  private handleMinter(key: ts.Expression, depth: number): FunctionLike | undefined {
    const id = skipOuter(key);
    if (!ts.isIdentifier(id)) return undefined;
    const symbol = this.flow.symbolAt(id);
    const decl = symbol?.valueDeclaration;
    if (!symbol || !decl) return undefined;
    const known = this.minted.get(symbol);
    if (known !== undefined) return known ?? undefined;
    this.minted.set(symbol, null); // cycles through recursive call sites
    let found: FunctionLike | undefined;
    if (ts.isVariableDeclaration(decl)) found = this.mintingFunction(decl);
    else if (ts.isParameter(decl) && depth < MAX_PARAMETER_DEPTH && isFunctionLike(decl.parent) && !ts.isParameterPropertyDeclaration(decl, decl.parent)) {
      const index = decl.parent.parameters.indexOf(decl);
      for (const site of this.flow.callSitesOf(decl.parent)) {
        const arg = site.arguments?.[index];
        found = arg && !ts.isSpreadElement(arg) ? this.handleMinter(arg, depth + 1) : undefined;
        if (found) break;
      }
    }
    this.minted.set(symbol, found ?? null);
    return found;
  }

  /** `const id = mint()` in a function that returns `id` to its caller: that function. */
  private mintingFunction(decl: ts.VariableDeclaration): FunctionLike | undefined {
    const fn = enclosingFunction(decl);
    const init = decl.initializer;
    if (!fn || !init || !ts.isIdentifier(decl.name) || isHidden(fn)) return undefined;
    if (!makesValue(init) || this.readsParameter(init)) return undefined;
    if (!this.isString(decl.name)) return undefined;
    const symbol = this.flow.symbolAt(decl.name);
    return returnedExpressions(fn).some((e) => this.returnsSymbol(e, symbol)) ? fn : undefined;
  }

  /** `id`, `{ id }`, `{ canvasId: id, … }` (through parentheses, `await`, `as`). */
  private returnsSymbol(expr: ts.Expression, symbol: ts.Symbol | undefined): boolean {
    const e = skipOuter(expr);
    if (ts.isIdentifier(e)) return this.flow.symbolAt(e) === symbol;
    if (!ts.isObjectLiteralExpression(e)) return false;
    return e.properties.some((p) => {
      if (ts.isShorthandPropertyAssignment(p)) return this.flow.checker.getShorthandAssignmentValueSymbol(p) === symbol;
      return ts.isPropertyAssignment(p) && ts.isIdentifier(skipOuter(p.initializer)) && this.flow.symbolAt(skipOuter(p.initializer)) === symbol;
    });
  }

  /** The expression refers to a parameter (of any function): the value is derived from what a caller passed. */
  private readsParameter(expr: ts.Expression): boolean {
    let found = false;
    const visit = (n: ts.Node): void => {
      if (found) return;
      if (ts.isIdentifier(n)) {
        if (ts.isPropertyAccessExpression(n.parent) && n.parent.name === n) return;
        const d = this.flow.symbolAt(n)?.valueDeclaration;
        if (d && ts.isParameter(d)) found = true;
        return;
      }
      ts.forEachChild(n, visit);
    };
    visit(expr);
    return found;
  }

  /** A string (or of unknown type): an id a client can be handed, unlike a number used in-process. */
  private isString(name: ts.Identifier): boolean {
    try {
      const type = this.flow.checker.getTypeAtLocation(name);
      // `any`: a minting call whose package types are not installed (`nanoid()` without its package).
      return (type.flags & (ts.TypeFlags.StringLike | ts.TypeFlags.Any)) !== 0;
    } catch {
      return false;
    }
  }

  /** The declaration name of the long-lived container a receiver reaches (`this.f`, a module variable, `root.get(k)` and locals holding it). */
  private rootContainer(receiver: ts.Expression, depth: number): ts.Node | undefined {
    if (depth > 3) return undefined;
    const r = skipOuter(receiver);
    if (ts.isCallExpression(r) && ts.isPropertyAccessExpression(r.expression) && r.expression.name.text === 'get') return this.rootContainer(r.expression.expression, depth + 1);
    const name = ts.isIdentifier(r) ? r : ts.isPropertyAccessExpression(r) ? r.name : undefined;
    if (!name) return undefined;
    const decl = this.flow.symbolAt(name)?.valueDeclaration;
    if (!decl) return undefined;
    if (ts.isVariableDeclaration(decl)) {
      const init = decl.initializer && skipOuter(decl.initializer);
      if (init && ts.isCallExpression(init) && ts.isPropertyAccessExpression(init.expression) && init.expression.name.text === 'get') {
        return this.rootContainer(init.expression.expression, depth + 1);
      }
      return isModuleLevel(decl) && isCollection(decl) ? decl.name : undefined;
    }
    if ((ts.isPropertyDeclaration(decl) || (ts.isParameter(decl) && ts.isParameterPropertyDeclaration(decl, decl.parent))) && isCollection(decl)) return decl.name;
    return undefined;
  }
}

/** A value made here: a call, `new`, an increment or a template with substitutions (not a constant, not a read). */
function makesValue(init: ts.Expression): boolean {
  let found = false;
  const visit = (n: ts.Node): void => {
    if (found || (n !== init && isFunctionLike(n))) return;
    if (ts.isCallExpression(n) || ts.isNewExpression(n)) found = true;
    else if ((ts.isPrefixUnaryExpression(n) || ts.isPostfixUnaryExpression(n)) && (n.operator === ts.SyntaxKind.PlusPlusToken || n.operator === ts.SyntaxKind.MinusMinusToken)) found = true;
    else ts.forEachChild(n, visit);
  };
  visit(init);
  return found;
}

/** A `private`/`protected`/`#private` member: its caller is its own class, which does not hand the handle out through it. */
function isHidden(fn: FunctionLike): boolean {
  const member = ts.isClassLike(fn.parent) ? fn : ts.isPropertyDeclaration(fn.parent) ? fn.parent : undefined;
  if (!member) return false;
  if ((member as ts.ClassElement).name && ts.isPrivateIdentifier((member as ts.ClassElement).name!)) return true;
  const mods = ts.canHaveModifiers(member) ? ts.getModifiers(member) : undefined;
  return !!mods?.some((m) => m.kind === ts.SyntaxKind.PrivateKeyword || m.kind === ts.SyntaxKind.ProtectedKeyword);
}

function isCollection(decl: ts.VariableDeclaration | ts.PropertyDeclaration | ts.ParameterDeclaration): boolean {
  if (decl.initializer && collectionOfExpression(decl.initializer)) return true;
  return !!decl.type && !!collectionOfTypeNode(decl.type);
}

/** A timer the class's constructor starts whose callback (or a method it calls) uses the table: its sweep. */
export function tableSweeps(flow: SessionFlow, table: HandleTable): ts.CallExpression[] {
  const ctor = table.cls?.members.find(ts.isConstructorDeclaration);
  const symbol = flow.symbolAt(table.node);
  if (!ctor?.body || !symbol) return [];
  const out: ts.CallExpression[] = [];
  const visit = (n: ts.Node): void => {
    if (ts.isCallExpression(n) && ts.isIdentifier(n.expression) && (n.expression.text === 'setInterval' || n.expression.text === 'setTimeout')) {
      const callback = n.arguments[0];
      if (callback && usesTable(flow, skipOuter(callback), symbol, table.cls!)) out.push(n);
    }
    ts.forEachChild(n, visit);
  };
  visit(ctor.body);
  return out;
}

/** `root` (or a method of `cls` it calls, one level) refers to the table. */
function usesTable(flow: SessionFlow, root: ts.Node, symbol: ts.Symbol, cls: ts.ClassLikeDeclaration): boolean {
  const bodies: ts.Node[] = [root];
  let found = false;
  const visit = (n: ts.Node, follow: boolean): void => {
    if (found) return;
    if ((ts.isIdentifier(n) || ts.isPrivateIdentifier(n)) && flow.symbolAt(n) === symbol) {
      found = true;
      return;
    }
    if (follow && ts.isCallExpression(n)) for (const fn of flow.callees(n)) if (isInside(fn, cls)) bodies.push(fn);
    ts.forEachChild(n, (c) => visit(c, follow));
  };
  visit(root, true);
  for (const body of bodies.slice(1)) visit(body, false);
  return found;
}
