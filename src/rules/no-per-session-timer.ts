import { ts } from 'ts-morph';
import { calleeName, enclosingFunction, functionOf, isFunctionLike, returnedExpressions, skipOuter, type FunctionLike, classNameOf } from '../analyzer/ast.js';
import type { SessionContainer } from '../analyzer/containers.js';
import { handlerRegistration, isReplayedHandler } from '../analyzer/handlers.js';
import { runsPerRequest, sessionScope, type SessionScope } from '../analyzer/session-scope.js';
import { holderOf, onSameLine } from '../analyzer/holders.js';
import type { FindingRef } from '../analyzer/types.js';
import { createRule, type RuleContext } from './create-rule.js';

/** Node.js and web timer APIs that return a handle (not `timers/promises`, whose `setTimeout` is awaited). */
const TIMER_APIS = new Set(['setTimeout', 'setInterval']);

type Reason = { kind: 'stored'; where: string } | { kind: 'closure'; where: string } | { kind: 'sweep'; container: string };

/**
 * The timer is started when the session opens (per-session code) or while handling a request that
 * handshake replay re-sends (`initialize`, `oninitialized`, `logging/setLevel`, `resources/subscribe`):
 * replay starts it again on the replica that serves the session.
 */
function startedByReplay(scope: SessionScope, call: ts.CallExpression): boolean {
  if (scope.isPerSessionCode(call)) return true;
  for (let f = enclosingFunction(call); f; f = enclosingFunction(f)) {
    const reg = handlerRegistration(f);
    if (reg) return isReplayedHandler(reg);
  }
  return false;
}

/** `setTimeout(…)`, `setInterval(…)`, not awaited. */
function isTimerCall(call: ts.CallExpression): boolean {
  const name = calleeName(call);
  if (!name || !TIMER_APIS.has(name)) return false;
  let p: ts.Node = call;
  while (p.parent && ts.isParenthesizedExpression(p.parent)) p = p.parent;
  return !ts.isAwaitExpression(p.parent);
}

/** A project function that starts a timer and returns (a handle to) it: `setManagedTimeout(cb, ms)`. */
function makesTimer(fn: FunctionLike, cache: Map<FunctionLike, boolean>): boolean {
  const cached = cache.get(fn);
  if (cached !== undefined) return cached;
  let found = false;
  const visit = (n: ts.Node): void => {
    if (found || (n !== fn && isFunctionLike(n) && runsPerRequest(n))) return;
    if (ts.isCallExpression(n) && isTimerCall(n)) found = true;
    else ts.forEachChild(n, visit);
  };
  if (fn.body) visit(fn.body);
  const returns = returnedExpressions(fn);
  const result = found && returns.length > 0;
  cache.set(fn, result);
  return result;
}

/** The timer calls a stored value holds: itself, an object literal's properties, a variable's initializer. */
function timersIn(ctx: RuleContext, value: ts.Expression, timers: Set<ts.CallExpression>, depth = 0): ts.CallExpression[] {
  if (depth > 2) return [];
  const e = skipOuter(value);
  if (ts.isCallExpression(e) && timers.has(e)) return [e];
  if (ts.isObjectLiteralExpression(e)) {
    return e.properties.flatMap((p) => {
      if (ts.isPropertyAssignment(p)) return timersIn(ctx, p.initializer, timers, depth + 1);
      if (ts.isShorthandPropertyAssignment(p)) {
        const decl = ctx.checker.getShorthandAssignmentValueSymbol(p)?.valueDeclaration;
        return decl && ts.isVariableDeclaration(decl) && decl.initializer ? timersIn(ctx, decl.initializer, timers, depth + 1) : [];
      }
      return [];
    });
  }
  if (ts.isIdentifier(e)) {
    const decl = ctx.flow.symbolAt(e)?.valueDeclaration;
    if (decl && ts.isVariableDeclaration(decl) && decl.initializer) return timersIn(ctx, decl.initializer, timers, depth + 1);
  }
  return [];
}

/** Where a timer's handle goes: the variable or property it initializes or is assigned to. */
function handleTarget(call: ts.CallExpression): ts.Node | undefined {
  let n: ts.Node = call;
  while (n.parent && (ts.isParenthesizedExpression(n.parent) || ts.isAsExpression(n.parent))) n = n.parent;
  const parent = n.parent;
  if (parent && ts.isVariableDeclaration(parent) && parent.initializer === n) return parent.name;
  if (parent && ts.isBinaryExpression(parent) && parent.right === n && parent.operatorToken.kind === ts.SyntaxKind.EqualsToken) return skipOuter(parent.left);
  return undefined;
}

/** A per-session variable (declared in per-session code) or a field of a per-session object holds the handle. */
function closureReason(ctx: RuleContext, scope: SessionScope, call: ts.CallExpression): Reason | undefined {
  const target = handleTarget(call);
  if (!target) return undefined;
  if (ts.isPropertyAccessExpression(target) && target.expression.kind === ts.SyntaxKind.ThisKeyword) {
    const cls = ts.findAncestor(call, ts.isClassLike);
    if (cls && scope.classes.has(cls)) return { kind: 'closure', where: `${classNameOf(cls)}.${target.name.text}` };
    return undefined;
  }
  if (!ts.isIdentifier(target)) return undefined;
  const symbol = ctx.flow.symbolAt(target);
  const decl = symbol?.valueDeclaration;
  if (!decl || !ts.isVariableDeclaration(decl) || !scope.isPerSessionCode(decl)) return undefined;
  const owner = enclosingFunction(decl);
  // Started by a hook or handler the per-session code registers, or started there and kept for them.
  const inHook = (n: ts.Node): boolean => {
    for (let f = enclosingFunction(n); f && f !== owner; f = enclosingFunction(f)) if (handlerRegistration(f)) return true;
    return false;
  };
  if (inHook(call)) return { kind: 'closure', where: target.text };
  let kept = false;
  const visit = (n: ts.Node): void => {
    if (kept) return;
    if (ts.isIdentifier(n) && n !== target && ctx.flow.symbolAt(n) === symbol && inHook(n)) kept = true;
    else ts.forEachChild(n, visit);
  };
  if (owner?.body) visit(owner.body);
  return kept ? { kind: 'closure', where: target.text } : undefined;
}

/** A timer outside any request whose callback works on per-session state (a cleanup sweep over a session map). */
function sweepReason(ctx: RuleContext, scope: SessionScope, call: ts.CallExpression, byDecl: Map<ts.Symbol, SessionContainer>): Reason | undefined {
  for (let f = enclosingFunction(call); f; f = enclosingFunction(f)) if (runsPerRequest(f) || scope.functions.has(f)) return undefined;
  if (scope.isPerSessionCode(call)) return undefined;
  const callback = call.arguments[0];
  if (!callback || isOneShot(ctx, call)) return undefined;
  const bodies: ts.Node[] = [];
  const fn = functionOf(callback);
  if (fn) bodies.push(fn);
  else if (ts.isIdentifier(skipOuter(callback))) {
    const decl = ctx.flow.symbolAt(skipOuter(callback))?.valueDeclaration;
    if (decl && isFunctionLike(decl)) bodies.push(decl);
    else if (decl && ts.isVariableDeclaration(decl) && decl.initializer && functionOf(decl.initializer)) bodies.push(functionOf(decl.initializer)!);
  }
  // One call level: `setInterval(() => this.cleanup(), …)`.
  for (const body of [...bodies]) {
    const visit = (n: ts.Node): void => {
      if (ts.isCallExpression(n)) for (const c of ctx.flow.callees(n)) if (c.body && ctx.isAnalyzed(c.getSourceFile())) bodies.push(c);
      ts.forEachChild(n, visit);
    };
    visit(body);
  }
  for (const body of bodies) {
    let hit: SessionContainer | undefined;
    const visit = (n: ts.Node): void => {
      if (hit) return;
      if (ts.isIdentifier(n) || ts.isPrivateIdentifier(n)) {
        const symbol = ctx.flow.symbolAt(n);
        const c = symbol && byDecl.get(symbol);
        if (c) hit = c;
      }
      ts.forEachChild(n, visit);
    };
    visit(body);
    if (hit) return { kind: 'sweep', container: hit.name };
  }
  return undefined;
}

/**
 * A `setTimeout` whose handle nobody keeps and whose callback does not start it again (no call of the
 * function that started it): a deferred call that runs once, not a sweep schedule.
 */
function isOneShot(ctx: RuleContext, call: ts.CallExpression): boolean {
  if (calleeName(call) !== 'setTimeout' || handleTarget(call)) return false;
  const starter = enclosingFunction(call);
  const callback = call.arguments[0]!;
  return !starter || !containsCallOf(ctx, callback, starter);
}

function containsCallOf(ctx: RuleContext, root: ts.Node, fn: FunctionLike): boolean {
  if (ts.isIdentifier(skipOuter(root as ts.Expression)) && ctx.flow.symbolAt(skipOuter(root as ts.Expression))?.valueDeclaration === fn) return true;
  let found = false;
  const visit = (n: ts.Node): void => {
    if (found) return;
    if (ts.isCallExpression(n) && ctx.flow.callees(n).includes(fn)) found = true;
    else ts.forEachChild(n, visit);
  };
  visit(root);
  return found;
}

/**
 * A per-session timer's handle kept in a class field is anchored on the field's declaration (the state); `null` when the
 * field belongs to a per-session object and is written after construction, since
 * `no-per-session-closure-state` reports that field.
 */
function fieldAnchor(ctx: RuleContext, scope: SessionScope, call: ts.CallExpression): ts.Node | null | undefined {
  const target = handleTarget(call);
  if (!target || !ts.isPropertyAccessExpression(target) || target.expression.kind !== ts.SyntaxKind.ThisKeyword) return undefined;
  const decl = ctx.flow.symbolAt(target.name)?.declarations?.find(ts.isPropertyDeclaration);
  const cls = decl?.parent;
  if (!decl || !cls || !ts.isClassLike(cls)) return undefined;
  if (scope.classes.has(cls) && scope.sessionFields(cls).some((f) => f.name === target.name.text)) return null;
  return decl.name;
}

/**
 * The variable or field that keeps the handle of a timer reported where it starts (`this.cleanupInterval =
 * setInterval(…)` declared elsewhere), reported covered by the timer's finding: the handle is how the
 * program stops or resets that timer, the same state.
 */
function reportHandle(ctx: RuleContext, call: ts.CallExpression, timer: FindingRef): void {
  const holder = holderOf(ctx.flow, call);
  if (!holder || onSameLine(holder, call)) return;
  const cls = ts.isPropertyDeclaration(holder.parent) && ts.isClassLike(holder.parent.parent) ? holder.parent.parent : undefined;
  const name = cls ? `${classNameOf(cls)}.${holder.getText()}` : holder.getText();
  const api = calleeName(call) ?? 'timer';
  ctx.report({
    node: holder,
    symbol: name,
    message:
      `\`${name}\` keeps the handle of the \`${api}\` reported where it starts (line ${timer.line}): the same timer, running in this process only. ` +
      'Behind a round-robin load balancer whoever stops or resets it through this handle reaches only this replica\'s timer. Move it with the timer: it is fixed with the timer\'s finding, whose fix it carries (an expiry kept in a shared store, or `mcp-migrate proxy` with owner routing).',
    coveredBy: timer,
  });
}

const REPLAY =
  'It is started when the session opens (or by a request that handshake replay re-sends), so `mcp-migrate proxy` starts it again on the replica that serves the session; move what it does to a store-backed expiry if it must run exactly once.';

function message(call: ts.CallExpression, reason: Reason, replayed: boolean): { symbol: string; message: string } {
  const api = calleeName(call) ?? 'timer';
  const manual =
    reason.kind === 'sweep'
      ? 'Let the shared store expire the entries (a TTL per session), or keep the sweep with the state when you move it by hand; no codemod rewrites a timer.'
      : 'Keep the deadline as data in a shared store (an expiry any replica can act on), or run `mcp-migrate proxy --affinity owner` so the replica that started it keeps serving the session.';
  const todo = replayed ? REPLAY : manual;
  switch (reason.kind) {
    case 'stored':
      return {
        symbol: reason.where,
        message:
          `This \`${api}\` is started for one session and its handle is kept with the session's state in \`${reason.where}\`: the timer runs only in this replica's process. ` +
          "Behind a round-robin load balancer the session's later requests (which reset, read or stop it) reach replicas that have no such timer, and when this replica goes away the timer silently stops. " +
          todo,
      };
    case 'closure':
      return {
        symbol: reason.where,
        message:
          `This \`${api}\` is started once per session and kept in \`${reason.where}\`, per-session state of the replica that opened the session. ` +
          "Behind a round-robin load balancer the session's other requests run on replicas where it was never started, so whatever it does (a ping, a deferred sync, an expiry) happens on one replica only, and requests that should stop or reset it cannot reach it. " +
          todo,
      };
    case 'sweep':
      return {
        symbol: api,
        message:
          `This \`${api}\` sweeps per-session state (\`${reason.container}\`) that each replica holds its own copy of. ` +
          'Behind a round-robin load balancer every replica expires only the entries of sessions it happened to serve, and once the state moves to a shared store this sweep no longer sees it. ' +
          todo,
      };
  }
}

/**
 * Finds timers whose lifetime is one session: a timer handle stored with a session's state (in a
 * session-keyed map or object, a per-session variable or the field of a per-session object), and
 * timers outside any request that sweep per-session state. Timers a request starts and clears
 * itself are not reported.
 */
export default createRule({
  meta: {
    id: 'no-per-session-timer',
    category: 'session-keyed-state',
    severity: 'warning',
    description: 'Timers started per session or sweeping per-session state, which run in one replica only',
    fix: 'manual',
  },
  create: (ctx) => {
    const calls: ts.CallExpression[] = [];
    return {
      [ts.SyntaxKind.CallExpression](node: ts.Node) {
        if (isTimerCall(node as ts.CallExpression)) calls.push(node as ts.CallExpression);
      },
      end() {
        if (calls.length === 0) return;
        // Calls of project functions that start a timer and return its handle count as timers too.
        const cache = new Map<FunctionLike, boolean>();
        for (const call of [...calls]) {
          const fn = enclosingFunction(call);
          if (fn && !runsPerRequest(fn) && ctx.isAnalyzed(fn.getSourceFile()) && makesTimer(fn, cache)) calls.push(...ctx.flow.callSitesOf(fn).filter(ts.isCallExpression));
        }
        const timers = new Set(calls);
        const scope = sessionScope(ctx.flow);
        const reasons = new Map<ts.CallExpression, Reason>();
        const byDecl = new Map<ts.Symbol, SessionContainer>();
        const handled = new Set<ts.CallExpression>();
        for (const c of ctx.containers()) {
          const symbol = ctx.flow.symbolAt(c.node);
          // A registry's transports are closed by whoever owns the registry (the runtime registry after `apply`): not swept state.
          if (symbol && !c.isRegistry) byDecl.set(symbol, c);
          // The timers of one stored entry (`{ abortTimeout, notificationTimeout }`) are one piece of state.
          for (const v of c.values) {
            const found = timersIn(ctx, v, timers).filter((t) => !handled.has(t));
            if (found.length === 0) continue;
            found.sort((a, b) => a.getStart() - b.getStart());
            for (const t of found) handled.add(t);
            reasons.set(found[0]!, { kind: 'stored', where: c.name });
          }
        }
        for (const call of calls) {
          if (handled.has(call) || reasons.has(call)) continue;
          const reason = closureReason(ctx, scope, call) ?? sweepReason(ctx, scope, call, byDecl);
          if (reason) reasons.set(call, reason);
        }
        const atCall: Array<[ts.CallExpression, FindingRef]> = [];
        for (const [call, reason] of reasons) {
          // A sweep's state is the session map it walks, reported on its own: the finding is where the sweep starts.
          const anchor = reason.kind === 'sweep' ? undefined : fieldAnchor(ctx, scope, call);
          if (anchor === null) continue; // the per-session object's field is reported as such
          const replayed = reason.kind !== 'sweep' && startedByReplay(scope, call);
          const ref = ctx.report({ node: anchor ?? call, ...message(call, reason, replayed), fix: replayed ? 'proxy' : 'manual' });
          if (ref && !anchor) atCall.push([call, ref]);
        }
        // After every timer's own finding, so a holder that is itself a timer's anchor keeps that finding.
        for (const [call, ref] of atCall) reportHandle(ctx, call, ref);
      },
    };
  },
});
