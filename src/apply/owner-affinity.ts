/**
 * Which findings of the migrated code owner affinity makes correct (docs/apply.md "Owner affinity").
 *
 * With `{ affinity: 'owner' }` every request of a session is served by the replica that opened it
 * (the others forward it), so everything of one session runs in one process, as on a single instance.
 * That makes exactly the state whose lifetime is one session and that only that session's requests
 * reach correct. It does not make process state shared across sessions correct: each replica keeps its
 * own copy, and a session reads the copy of its owner, not what another session wrote elsewhere.
 *
 * Decided from the rule that reported the finding (what the rule proved about the state's lifetime)
 * and, where the rule's proof stops at "keyed by session id", from the data flow of the migrated text:
 * - `no-per-session-timer`: a timer started once per session by per-session code (session scope,
 *   `src/analyzer/session-scope.ts`) and kept per session; or the rule's module-level sweep when what it
 *   sweeps is owned (`ownedSweep`): each process then holds only its own sessions' entries and deletes
 *   each by its own key, as one instance does;
 * - `no-per-session-closure-state`: state captured per session by the handlers of a per-session
 *   function or a field of an object made once per session;
 * - `no-session-keyed-state`: a container keyed by session id whose values cannot be serialized, when
 *   every use of it is a keyed access (`get`/`set`/`has`/`delete` with a key, or `o[k]` with a computed
 *   key on a plain object): no iteration, `size`, `clear` or hand-off, so no session reaches another
 *   session's entries; and every use runs for a session's own requests: in MCP handlers and session
 *   hooks, in functions they call, or in an HTTP route the registry guards (`prepareNode`, which forwards
 *   the session's requests to its owner). Also accepted: a sweep's loop over the container deleting by
 *   the key it iterated, and keyed uses in a process shutdown hook (`process.on('SIGINT', …)`), which
 *   reach only this process's own sessions' entries. A use
 *   in another HTTP route (a browser callback completing an elicitation by its id, a status page) or at
 *   module level reaches the container on whichever replica the load balancer picked: not owned.
 * Everything else stays (module-level state written by requests, the project's own task stores and
 * queues, holders of objects several sessions share, legacy SSE, frameworks): a task store at module
 * level whose reads take a client-supplied task id without the session (`getTask(taskId)`) is not
 * provably bound to one session, so its tasks' per-session ownership is not proved.
 */
import { Node, ts } from 'ts-morph';
import { enclosingFunction } from '../analyzer/ast.js';
import { handlerRegistration } from '../analyzer/handlers.js';
import type { LocatedFinding } from '../../transforms/define-transform.js';
import { functionNameNode, isOwnerRouted, sessionRouteOf, type SessionRoute } from './session-routes.js';

/** HTTP routers' registrars (`handlers.ts`): a route's requests carry no session the registry forwards unless the route is guarded. */
const HTTP_REGISTRARS = new Set(['get', 'post', 'put', 'patch', 'delete', 'all', 'use', 'route', 'handle', 'createServer', 'on']);

/** Keyed accesses of a `Map`/`Set`/`WeakMap` (by one key): each reaches one session's entry. */
const KEYED = new Set(['get', 'set', 'has', 'delete', 'add']);

/**
 * What stays in process under owner affinity, in a phrase (for the summary), or `undefined` when owner
 * affinity does not make the finding correct.
 */
export function ownerResolvable(lf: LocatedFinding, routes: SessionRoute[] = []): string | undefined {
  switch (lf.finding.ruleId) {
    case 'no-per-session-timer':
      // Started in a function (per-session code); a module-level timer is the rule's other case, a sweep of
      // per-session state every replica holds a copy of: correct when that state is owned (`ownedSweep`).
      if (enclosingFunction(lf.node.compilerNode)) return 'a timer started once per session, running on the replica that opened it';
      return ownedSweep(lf.node, routes) ? "a sweep deleting each replica's own expired entries of per-session state it owns" : undefined;
    case 'no-per-session-closure-state':
      return 'state captured once per session by its handlers, in the process that opened it';
    case 'no-session-keyed-state':
      return onlyKeyedAccess(lf.node, routes) ? 'live per-session values in a container the analysis ties to sessions, each reached only through its own key' : undefined;
    default:
      return undefined;
  }
}

/**
 * Whether every reference to the container the finding names is `x.get(k)`, `x.set(k, v)`, `x.has(k)`,
 * `x.delete(k)` or `x.add(k)` (also through `this.x`). False when the declaration is not found, or for
 * any other use (iteration, `size`, `clear()`, passing it on, reassignment).
 */
export function onlyKeyedAccess(node: Node, routes: SessionRoute[] = []): boolean {
  const name = declarationName(node);
  if (!name || !Node.isReferenceFindable(name)) return false;
  const refs = name.findReferencesAsNodes().filter((r) => r !== name);
  if (refs.length === 0) return false;
  return refs.every((ref) => {
    let use: Node = ref;
    const p = use.getParent();
    if (p && Node.isPropertyAccessExpression(p) && p.getNameNode() === ref) use = p;
    if (isConstructorInitialization(use) || sweepUse(use)) return true;
    return (keyedCall(use) || keyedElement(use)) && reachedBySessionRequests(use, 0, new Set(), routes);
  });
}

/** `x.get(k)`, `x.set(k, v)`, `x.has(k)`, `x.delete(k)`, `x.add(k)`. */
function keyedCall(use: Node): boolean {
  const access = use.getParent();
  if (!access || !Node.isPropertyAccessExpression(access) || access.getExpression() !== use) return false;
  const call = access.getParent();
  return KEYED.has(access.getName()) && !!call && Node.isCallExpression(call) && call.getExpression() === access && call.getArguments().length >= 1;
}

/**
 * `x[k]`, `x[k] = v`, `delete x[k]` on a plain object used as a dictionary: one entry by a computed key.
 * A literal key (`x['a']`, `x[0]`) names one fixed property, shared by every session: not keyed.
 */
function keyedElement(use: Node): boolean {
  const el = use.getParent();
  if (!el || !Node.isElementAccessExpression(el) || el.getExpression() !== use) return false;
  const key = el.getArgumentExpression();
  return !!key && !Node.isStringLiteral(key) && !Node.isNumericLiteral(key) && !Node.isNoSubstitutionTemplateLiteral(key);
}

/**
 * A sweep's use of `x`: `for (const [k, v] of x.entries())` (or `of x`, `of x.keys()`), or `x.delete(k)`
 * inside such a loop with its own key `k`. Each replica's copy then loses only entries it holds, each by
 * its own value: with every other use keyed and run for the session on its owner, that is the sweep of one
 * instance over its own sessions' entries.
 */
function sweepUse(use: Node): boolean {
  if (!inTimerCallback(use)) return false;
  if (sweepLoopKey(use)) return true;
  if (!keyedCall(use) || (use.getParent() as import('ts-morph').PropertyAccessExpression).getName() !== 'delete') return false;
  const key = (use.getParentOrThrow().getParentOrThrow() as import('ts-morph').CallExpression).getArguments()[0];
  if (!key || !Node.isIdentifier(key)) return false;
  for (let loop = use.getFirstAncestorByKind(ts.SyntaxKind.ForOfStatement); loop; loop = loop.getFirstAncestorByKind(ts.SyntaxKind.ForOfStatement)) {
    const iterated = loopContainer(loop);
    const loopKey = iterated && sweepLoopKey(iterated);
    if (loopKey && sameSymbol(iterated, use) && loopKey.getSymbol() === key.getSymbol()) return true;
  }
  return false;
}

const TIMERS = new Set(['setInterval', 'setTimeout']);

/**
 * Whether `node` is in a function only timers run: given inline to `setInterval`/`setTimeout`, or a
 * function of the project whose every reference is that argument. A sweep a request runs (a purge route)
 * is not: on one instance it would reach every session's entries, here only the replica's it landed on.
 */
function inTimerCallback(node: Node): boolean {
  const fn = enclosingFn(node);
  if (!fn) return false;
  const timerArg = (n: Node): boolean => {
    const call = n.getParent();
    return !!call && Node.isCallExpression(call) && call.getArguments()[0] === n && TIMERS.has(call.getExpression().getText());
  };
  if (timerArg(fn)) return true;
  const name = functionNameNode(fn);
  if (!name || !Node.isReferenceFindable(name)) return false;
  const refs = name.findReferencesAsNodes().filter((r) => r !== name);
  return refs.length > 0 && refs.every(timerArg);
}

/** The node naming the container a `for … of` iterates (`x`, `x.entries()`, `x.keys()`), or undefined. */
function loopContainer(loop: import('ts-morph').ForOfStatement): Node | undefined {
  let e: Node = loop.getExpression();
  if (Node.isCallExpression(e) && e.getArguments().length === 0 && Node.isPropertyAccessExpression(e.getExpression()) && ['entries', 'keys'].includes((e.getExpression() as import('ts-morph').PropertyAccessExpression).getName())) {
    e = (e.getExpression() as import('ts-morph').PropertyAccessExpression).getExpression();
  }
  return Node.isIdentifier(e) || Node.isPropertyAccessExpression(e) ? e : undefined;
}

/** The key identifier a sweep loop over `use` binds (`const [k, v]` for entries, `const k` for keys), or undefined. */
function sweepLoopKey(use: Node): Node | undefined {
  let expr: Node = use;
  const access = use.getParent();
  const call = access?.getParent();
  let keysOnly = false;
  if (access && Node.isPropertyAccessExpression(access) && access.getExpression() === use && call && Node.isCallExpression(call) && call.getArguments().length === 0 && ['entries', 'keys'].includes(access.getName())) {
    expr = call;
    keysOnly = access.getName() === 'keys';
  }
  const loop = expr.getParent();
  if (!loop || !Node.isForOfStatement(loop) || loop.getExpression() !== expr) return undefined;
  const init = loop.getInitializer();
  const decl = Node.isVariableDeclarationList(init) ? init.getDeclarations()[0] : undefined;
  const name = decl?.getNameNode();
  if (keysOnly) return name && Node.isIdentifier(name) ? name : undefined;
  if (!name || !Node.isArrayBindingPattern(name)) return undefined;
  const first = name.getElements()[0];
  return first && Node.isBindingElement(first) && Node.isIdentifier(first.getNameNode()) ? first.getNameNode() : undefined;
}

function sameSymbol(a: Node, b: Node): boolean {
  const sa = (Node.isPropertyAccessExpression(a) ? a.getNameNode() : a).getSymbol();
  const sb = (Node.isPropertyAccessExpression(b) ? b.getNameNode() : b).getSymbol();
  return !!sa && sa === sb;
}

/**
 * A module-level timer whose callback sweeps owned per-session state: it has at least one sweep loop
 * (`sweepLoopKey`), every container it iterates passes {@link onlyKeyedAccess} (so each replica's copy holds
 * only its own sessions' entries), and it calls no function of the project (whose state this check would not see).
 */
function ownedSweep(timer: Node, routes: SessionRoute[]): boolean {
  const call = Node.isCallExpression(timer) ? timer : timer.getFirstAncestorByKind(ts.SyntaxKind.CallExpression);
  const cb = callbackBody(call?.getArguments()[0]);
  if (!cb) return false;
  const loops = cb.getDescendantsOfKind(ts.SyntaxKind.ForOfStatement).map(loopContainer).filter((c): c is Node => !!c && !!sweepLoopKey(c));
  if (loops.length === 0) return false;
  const callsProject = cb.getDescendantsOfKind(ts.SyntaxKind.CallExpression).some((c) => projectFunction(c.getExpression()));
  return !callsProject && loops.every((c) => {
    const decl = (Node.isPropertyAccessExpression(c) ? c.getNameNode() : c).getSymbol()?.getDeclarations()[0];
    return !!decl && onlyKeyedAccess(decl, routes);
  });
}

/** The function a timer is given: inline, or by the name of a function declared in the project. */
function callbackBody(arg: Node | undefined): Node | undefined {
  if (!arg) return undefined;
  if (Node.isArrowFunction(arg) || Node.isFunctionExpression(arg)) return arg;
  return projectFunction(arg);
}

/** The project's own function a callee or reference names (not one from a declaration file), or undefined. */
function projectFunction(expr: Node): Node | undefined {
  const name = Node.isPropertyAccessExpression(expr) ? expr.getNameNode() : expr;
  for (const d of name.getSymbol()?.getDeclarations() ?? []) {
    if (d.getSourceFile().isDeclarationFile()) continue;
    if (Node.isFunctionDeclaration(d) || Node.isMethodDeclaration(d)) return d;
    if (Node.isVariableDeclaration(d)) {
      const init = d.getInitializer();
      if (init && (Node.isArrowFunction(init) || Node.isFunctionExpression(init))) return init;
    }
  }
  return undefined;
}

/** How many callers deep {@link reachedBySessionRequests} follows a helper before it gives up (not owned). */
const MAX_CALLER_DEPTH = 4;

/**
 * Whether code at `node` runs only for a session's own requests on its owner. Its innermost registered
 * handler (`handlers.ts`) decides: an MCP request handler or a session hook runs for its session; an HTTP
 * route only when it calls `prepareNode` (the registry's guard, which forwards a session's request to its
 * owner first). Code in no registered handler is followed to its callers (functions, methods, the
 * registry's `opener`), up to {@link MAX_CALLER_DEPTH} deep; module-level code, an anonymous callback
 * handed elsewhere, or a function used in any other way is not proved to run for one session.
 */
export function reachedBySessionRequests(node: Node, depth = 0, seen = new Set<Node>(), routes: SessionRoute[] = []): boolean {
  let outermost: Node | undefined;
  for (let fn = enclosingFn(node); fn; fn = enclosingFn(fn)) {
    if (processShutdownHook(fn)) return true;
    const reg = handlerRegistration(fn.compilerNode);
    if (reg) return !HTTP_REGISTRARS.has(reg.registrar) || routedToOwner(fn, routes);
    outermost = fn;
  }
  if (!outermost || depth >= MAX_CALLER_DEPTH) return false;
  if (seen.has(outermost)) return true; // a cycle: its other callers are checked where it was entered
  seen.add(outermost);
  const name = functionNameNode(outermost);
  if (!name || !Node.isReferenceFindable(name)) return false;
  const refs = name.findReferencesAsNodes().filter((r) => r !== name);
  if (refs.length === 0) return false;
  return refs.every((ref) => {
    const use = Node.isPropertyAccessExpression(ref.getParent()) && (ref.getParent() as import('ts-morph').PropertyAccessExpression).getNameNode() === ref ? ref.getParentOrThrow() : ref;
    const parent = use.getParent();
    if (parent && Node.isCallExpression(parent) && parent.getExpression() === use) return reachedBySessionRequests(parent, depth + 1, seen, routes);
    // Handed to a registrar (`server.registerTool('t', fn)`, `app.post('/mcp', fn)`), or to the registry's `opener` (run for one session's restore).
    const reg = handlerRegistration(use.compilerNode);
    if (reg) return !HTTP_REGISTRARS.has(reg.registrar) || routedToOwner(outermost, routes);
    return !!parent && Node.isCallExpression(parent) && Node.isPropertyAccessExpression(parent.getExpression()) && (parent.getExpression() as import('ts-morph').PropertyAccessExpression).getName() === 'opener';
  });
}

/** Signals and events after which the process ends (Node.js `process` events). */
const SHUTDOWN_EVENTS = new Set(['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'beforeExit', 'exit']);

/**
 * `process.on('SIGINT', fn)` (or `once`, another shutdown signal): `fn` runs once, in this process, as it
 * ends; under owner affinity the entries it reaches by key are this replica's own sessions', which it
 * leaves with the process, as one instance does.
 */
function processShutdownHook(fn: Node): boolean {
  const call = fn.getParent();
  if (!call || !Node.isCallExpression(call) || !call.getArguments().includes(fn)) return false;
  const callee = call.getExpression();
  const event = call.getArguments()[0];
  return Node.isPropertyAccessExpression(callee) && ['on', 'once'].includes(callee.getName()) && callee.getExpression().getText() === 'process'
    && !!event && Node.isStringLiteral(event) && SHUTDOWN_EVENTS.has(event.getLiteralText());
}

function enclosingFn(node: Node): Node | undefined {
  return node.getFirstAncestor((a) => Node.isFunctionDeclaration(a) || Node.isFunctionExpression(a) || Node.isArrowFunction(a) || Node.isMethodDeclaration(a) || Node.isConstructorDeclaration(a) || Node.isGetAccessorDeclaration(a) || Node.isSetAccessorDeclaration(a));
}

/**
 * Whether an HTTP route's requests run on the session's owner: it calls `prepareNode` (an MCP route), it
 * goes through `registry.ownerRoute(…)` already, or it acts for a session by data flow
 * (`session-routes.ts`: then it is added to `routes`, for the transform to route it).
 */
function routedToOwner(fn: Node, routes: SessionRoute[]): boolean {
  if (callsPrepareNode(fn.compilerNode) || isOwnerRouted(fn)) return true;
  const route = sessionRouteOf(fn);
  if (route && !routes.some((r) => r.call === route.call)) routes.push(route);
  return route !== undefined;
}

function callsPrepareNode(fn: ts.Node): boolean {
  let found = false;
  const visit = (n: ts.Node): void => {
    if (found) return;
    if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression) && n.expression.name.text === 'prepareNode') found = true;
    else ts.forEachChild(n, visit);
  };
  visit(fn);
  return found;
}

/** `this.x = new Map()` in a constructor: the field's initialization, in JavaScript. */
function isConstructorInitialization(use: Node): boolean {
  const b = use.getParent();
  return !!b && Node.isBinaryExpression(b) && b.getLeft() === use && b.getOperatorToken().getText() === '=' && Node.isNewExpression(b.getRight()) && Node.isConstructorDeclaration(b.getParent()?.getParent()?.getParent());
}

/** The name node of the variable or field a finding's node declares or is. */
function declarationName(node: Node): Node | undefined {
  const decl = Node.isIdentifier(node) || Node.isPrivateIdentifier(node) ? node.getParent() : node;
  if (decl && (Node.isVariableDeclaration(decl) || Node.isPropertyDeclaration(decl))) return decl.getNameNode();
  if (decl && Node.isPropertyAccessExpression(decl)) return decl.getNameNode(); // `this.x = new Map()` in a JavaScript constructor
  return undefined;
}
