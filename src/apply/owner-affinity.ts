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
 *   `src/analyzer/session-scope.ts`) and kept per session (not the rule's module-level sweep of
 *   per-session state: that runs in every process over whatever copy it holds);
 * - `no-per-session-closure-state`: state captured per session by the handlers of a per-session
 *   function or a field of an object made once per session;
 * - `no-session-keyed-state`: a container keyed by session id whose values cannot be serialized, when
 *   every use of it is a keyed access (`get`/`set`/`has`/`delete` with a key): no iteration, `size`,
 *   `clear` or hand-off, so no session reaches another session's entries; and every use runs for a
 *   session's own requests: in MCP handlers and session hooks, in functions they call, or in an HTTP
 *   route the registry guards (`prepareNode`, which forwards the session's requests to its owner). A use
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
import { isOwnerRouted, sessionRouteOf, type SessionRoute } from './session-routes.js';

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
      // per-session state every replica holds a copy of, which stays wherever that state is not owned.
      return enclosingFunction(lf.node.compilerNode) ? 'a timer started once per session, running on the replica that opened it' : undefined;
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
    if (isConstructorInitialization(use)) return true;
    const access = use.getParent();
    if (!access || !Node.isPropertyAccessExpression(access) || access.getExpression() !== use) return false;
    const call = access.getParent();
    const keyed = KEYED.has(access.getName()) && !!call && Node.isCallExpression(call) && call.getExpression() === access && call.getArguments().length >= 1;
    return keyed && reachedBySessionRequests(use, 0, new Set(), routes);
  });
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

function enclosingFn(node: Node): Node | undefined {
  return node.getFirstAncestor((a) => Node.isFunctionDeclaration(a) || Node.isFunctionExpression(a) || Node.isArrowFunction(a) || Node.isMethodDeclaration(a) || Node.isConstructorDeclaration(a) || Node.isGetAccessorDeclaration(a) || Node.isSetAccessorDeclaration(a));
}

/** The name a function is called by: its own, or the variable or property it initializes. */
function functionNameNode(fn: Node): Node | undefined {
  if (Node.isFunctionDeclaration(fn) || Node.isMethodDeclaration(fn)) return fn.getNameNode();
  const p = fn.getParent();
  if (p && (Node.isVariableDeclaration(p) || Node.isPropertyAssignment(p) || Node.isPropertyDeclaration(p)) && p.getInitializer() === fn) return p.getNameNode();
  return undefined;
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
