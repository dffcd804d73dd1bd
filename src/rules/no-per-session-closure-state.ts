import { ts } from 'ts-morph';
import { handlerRegistration, isInside, isReplayedHandler } from '../analyzer/handlers.js';
import { calleeName, enclosingFunction, functionName, isFunctionLike, skipOuter, type FunctionLike } from '../analyzer/session-flow.js';
import { createRule } from './create-rule.js';

const MUTATORS = new Set(['set', 'add', 'push', 'delete', 'clear', 'splice', 'unshift', 'pop', 'shift']);
const COLLECTION_INIT = /^(new (Map|Set|WeakMap|WeakSet|Array)\b|\[|\{)/;

interface Write {
  node: ts.Node;
  /** Inside a registered handler: runs on later requests of the session, not during the factory call. */
  inHandler: boolean;
  replayed: boolean;
}

/** Every write to `symbol` that happens inside a nested function of `factory`, with whether handshake replay re-runs it. */
function writesInClosures(ctx: { flow: { symbolAt(n: ts.Node): ts.Symbol | undefined } }, factory: FunctionLike, symbol: ts.Symbol): Write[] {
  const writes: Write[] = [];
  const visit = (n: ts.Node): void => {
    let written: ts.Node | undefined;
    if (ts.isBinaryExpression(n) && n.operatorToken.kind >= ts.SyntaxKind.FirstAssignment && n.operatorToken.kind <= ts.SyntaxKind.LastAssignment) {
      const left = skipOuter(n.left);
      if (ts.isIdentifier(left)) written = left;
      else if ((ts.isElementAccessExpression(left) || ts.isPropertyAccessExpression(left)) && ts.isIdentifier(skipOuter(left.expression))) written = skipOuter(left.expression);
    } else if ((ts.isPrefixUnaryExpression(n) || ts.isPostfixUnaryExpression(n)) && ts.isIdentifier(n.operand)) {
      written = n.operand;
    } else if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression) && MUTATORS.has(n.expression.name.text) && ts.isIdentifier(skipOuter(n.expression.expression))) {
      written = skipOuter(n.expression.expression);
    }
    if (written && ctx.flow.symbolAt(written) === symbol) {
      const fn = enclosingFunction(n);
      if (fn && fn !== factory) {
        let replayed = false;
        let inHandler = false;
        for (let f: FunctionLike | undefined = fn; f && f !== factory; f = enclosingFunction(f)) {
          const reg = handlerRegistration(f);
          if (reg) {
            inHandler = true;
            replayed = isReplayedHandler(reg);
            break;
          }
        }
        writes.push({ node: n, inHandler, replayed });
      }
    }
    ts.forEachChild(n, visit);
  };
  if (factory.body) ts.forEachChild(factory.body, visit);
  return writes;
}

function isInsideNestedFunction(n: ts.Node, outer: ts.Node): boolean {
  for (let p: ts.Node | undefined = n.parent; p && p !== outer; p = p.parent) if (isFunctionLike(p)) return true;
  return false;
}

/** True when the class keeps mutable state: a field written outside its constructor. */
function hasMutableState(cls: ts.ClassLikeDeclaration): boolean {
  return cls.members.some((m) => {
    // Writes in methods and setters, and in functions nested in the constructor or in arrow-function
    // fields (handlers registered at construction); plain constructor statements are initialization.
    const isCtor = ts.isConstructorDeclaration(m);
    const arrowField = ts.isPropertyDeclaration(m) && m.initializer && (ts.isArrowFunction(m.initializer) || ts.isFunctionExpression(m.initializer));
    if (!ts.isMethodDeclaration(m) && !ts.isSetAccessorDeclaration(m) && !isCtor && !arrowField) return false;
    let writes = false;
    const visit = (n: ts.Node): void => {
      if (writes) return;
      if (isCtor && !isInsideNestedFunction(n, m)) {
        ts.forEachChild(n, visit);
        return;
      }
      if (ts.isBinaryExpression(n) && n.operatorToken.kind >= ts.SyntaxKind.FirstAssignment && n.operatorToken.kind <= ts.SyntaxKind.LastAssignment && /^this\./.test(n.left.getText())) writes = true;
      else if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression) && MUTATORS.has(n.expression.name.text) && /^this\./.test(n.expression.expression.getText())) writes = true;
      else ts.forEachChild(n, visit);
    };
    const body = arrowField ? (m as ts.PropertyDeclaration).initializer : (m as ts.MethodDeclaration).body;
    if (body) visit(body);
    return writes;
  });
}

/**
 * Finds state whose lifetime is one session: variables of a per-session factory (a function called
 * where a sessionful transport is opened) captured and written by the closures it registers, in-memory
 * stores created per session, and instances of stateful classes created per session.
 */
export default createRule({
  meta: {
    id: 'no-per-session-closure-state',
    category: 'session-keyed-state',
    severity: 'warning',
    description: 'State created once per session: factory closures, per-session in-memory stores and class instances',
    fix: 'manual',
  },
  create: (ctx) => ({
    end() {
      // Functions that open a session: they construct a sessionful transport.
      const openers = new Set<FunctionLike>();
      for (const site of [...ctx.flow.statefulGenerators, ...ctx.flow.sseTransports]) {
        const fn = enclosingFunction(site);
        if (fn) openers.add(fn);
      }
      // Helpers that build the transport (`newSessionTransport()`) open a session for their callers too.
      for (let level = 0; level < 2 && openers.size > 0; level++) {
        const names = new Set([...openers].map(functionName).filter((n): n is string => !!n));
        if (names.size === 0) break;
        const callers = new Set<FunctionLike>();
        for (const file of ctx.flow.sourceFiles) {
          const visit = (n: ts.Node): void => {
            if (ts.isCallExpression(n) && names.has(calleeName(n) ?? '') && ctx.flow.callees(n).some((fn) => openers.has(fn))) {
              const caller = enclosingFunction(n);
              if (caller && !openers.has(caller)) callers.add(caller);
            }
            ts.forEachChild(n, visit);
          };
          visit(file);
        }
        if (callers.size === 0) break;
        for (const c of callers) openers.add(c);
      }
      const factories = new Map<FunctionLike, string>();
      const perSessionNews: ts.NewExpression[] = [];
      for (const opener of openers) {
        const visit = (n: ts.Node): void => {
          if (n !== opener && isFunctionLike(n)) return; // only what runs when the session opens
          if (ts.isCallExpression(n)) {
            for (const fn of ctx.flow.callees(n)) {
              if (fn.body && ctx.isAnalyzed(fn.getSourceFile())) factories.set(fn, calleeName(n) ?? 'factory');
            }
          } else if (ts.isNewExpression(n)) perSessionNews.push(n);
          ts.forEachChild(n, visit);
        };
        visit(opener);
      }
      for (const [factory, factoryName] of factories) {
        if (!factory.body || !ts.isBlock(factory.body)) continue;
        for (const statement of factory.body.statements) {
          if (!ts.isVariableStatement(statement)) continue;
          for (const decl of statement.declarationList.declarations) {
            if (!ts.isIdentifier(decl.name)) continue;
            const symbol = ctx.flow.symbolAt(decl.name);
            if (!symbol) continue;
            const init = decl.initializer ? skipOuter(decl.initializer) : undefined;
            const name = decl.name.text;
            if (init && ts.isNewExpression(init) && /^InMemory/.test(calleeName(init) ?? '') && !/EventStore$/.test(calleeName(init) ?? '')) {
              ctx.report({
                node: decl.name,
                symbol: name,
                message:
                  `\`${name}\` is a \`${calleeName(init)}\` created once per session by \`${factoryName}()\`: its entries (tasks, queued messages) exist only in this replica's memory. ` +
                  'Behind a round-robin load balancer a later request of the session (for example `tasks/get` or `tasks/result`) reaches a replica with an empty store. ' +
                  'Back it with a shared store, or run `mcp-migrate proxy --affinity owner` so the replica that created the session keeps serving it.',
              });
              continue;
            }
            const isLet = (statement.declarationList.flags & ts.NodeFlags.Let) !== 0;
            const isCollection = !!init && COLLECTION_INIT.test(init.getText());
            if (!isLet && !isCollection) continue;
            // Only writes from registered handlers outlive the factory call; a local written by a
            // promise executor or a stream callback is request-scoped, not session state.
            const writes = writesInClosures(ctx, factory, symbol).filter((w) => w.inHandler);
            if (writes.length === 0) continue;
            const replayed = writes.every((w) => w.replayed);
            ctx.report({
              node: decl.name,
              symbol: name,
              fix: replayed ? 'proxy' : 'manual',
              message:
                `\`${name}\` is created once per session by \`${factoryName}()\` and written by the handlers it registers, so it lives only in the replica that opened the session. ` +
                'Behind a round-robin load balancer the session\'s other requests run on replicas whose copy was never written. ' +
                (replayed
                  ? 'It is only written while handling `initialize`, `logging/setLevel` or `resources/subscribe`, which `mcp-migrate proxy` replays on every replica, so the proxy rebuilds it.'
                  : 'No handshake replay rebuilds it: move it to a session map in a shared store, or run `mcp-migrate proxy --affinity owner`.'),
            });
          }
        }
      }
      for (const n of perSessionNews) {
        const symbol = ctx.flow.symbolAt(ts.isPropertyAccessExpression(n.expression) ? n.expression.name : n.expression);
        const cls = symbol?.declarations?.find((d): d is ts.ClassDeclaration => ts.isClassDeclaration(d));
        if (!cls || !ctx.isAnalyzed(cls.getSourceFile()) || !hasMutableState(cls)) continue;
        if (/EventStore$/.test(cls.name?.text ?? '')) continue;
        // Instances stored in a session registry are reported with the registry.
        if (isInside(n, cls)) continue;
        const name = cls.name?.text ?? 'class';
        ctx.report({
          node: n,
          symbol: name,
          message:
            `A \`${name}\` is created for each session here, and its methods change its fields: its state lives only in the replica that opened the session. ` +
            'Behind a round-robin load balancer the session\'s later requests reach replicas without this instance. ' +
            'Keep its state in a shared store keyed by session id, or run `mcp-migrate proxy --affinity owner`.',
        });
      }
    },
  }),
});
