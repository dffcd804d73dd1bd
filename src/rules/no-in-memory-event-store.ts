import path from 'node:path';
import { ts } from 'ts-morph';
import { isModuleLevel } from '../analyzer/handlers.js';
import { calleeName } from '../analyzer/session-flow.js';
import { createRule, type RuleContext } from './create-rule.js';
import { classNameOf } from '../analyzer/ast.js';

const EVENT_STORE_METHODS = ['storeEvent', 'replayEventsAfter'];
const IN_MEMORY_INIT = /^new (Map|Set|Array)\b|^\[|^\{/;

const MUTATORS = new Set(['set', 'push', 'add', 'unshift', 'splice']);

type Resolver = { symbolAt(n: ts.Node): ts.Symbol | undefined };

/** A module-level collection (`const events = new Map()` at the top of a file). */
function isModuleCollection(flow: Resolver, id: ts.Expression): boolean {
  if (!ts.isIdentifier(id)) return false;
  const decl = flow.symbolAt(id)?.valueDeclaration;
  return !!decl && ts.isVariableDeclaration(decl) && !!decl.initializer && IN_MEMORY_INIT.test(decl.initializer.getText()) && isModuleLevel(decl);
}

/** Events kept in memory: a field initialized with a collection, or a module-level collection the methods write. */
function keepsEventsInMemory(flow: Resolver, members: readonly ts.Node[]): boolean {
  let inMemory = false;
  const visit = (n: ts.Node): void => {
    if (inMemory) return;
    if (ts.isPropertyDeclaration(n) && n.initializer && IN_MEMORY_INIT.test(n.initializer.getText())) inMemory = true;
    else if (ts.isBinaryExpression(n) && n.operatorToken.kind === ts.SyntaxKind.EqualsToken && n.left.getText().startsWith('this.') && IN_MEMORY_INIT.test(n.right.getText())) inMemory = true;
    else if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression) && MUTATORS.has(n.expression.name.text) && isModuleCollection(flow, n.expression.expression)) inMemory = true;
    else if (ts.isBinaryExpression(n) && n.operatorToken.kind === ts.SyntaxKind.EqualsToken && ts.isElementAccessExpression(n.left) && isModuleCollection(flow, n.left.expression)) inMemory = true;
    else ts.forEachChild(n, visit);
  };
  members.forEach(visit);
  return inMemory;
}

function hasEventStoreMethods(members: readonly ts.Node[]): boolean {
  const names = new Set(
    members
      .filter((m) => ts.isMethodDeclaration(m) || ts.isPropertyAssignment(m) || ts.isPropertyDeclaration(m))
      .map((m) => (m as ts.MethodDeclaration).name?.getText()),
  );
  return EVENT_STORE_METHODS.every((m) => names.has(m));
}

/** An SDK `EventStore` implementation (`storeEvent` + `replayEventsAfter`) that keeps events in process memory. */
function isInMemoryEventStoreClass(flow: Resolver, cls: ts.ClassLikeDeclaration): boolean {
  return hasEventStoreMethods(cls.members) && keepsEventsInMemory(flow, cls.members);
}

const MESSAGE =
  'keeps the SSE events of each stream in this process\'s memory for `Last-Event-ID` resumption. ' +
  'Behind a round-robin load balancer a client reconnecting with `Last-Event-ID` reaches another replica, which has none of the events, so the missed messages are lost (and a restart loses all of them). ' +
  'Run `mcp-migrate apply --store redis` to use the runtime\'s Redis event store, namespaced per session and stream.';

/**
 * Where the program makes the class's stores (`new C()` sites, file:line), for the class's one finding: the
 * event-store transform rewrites every one of them with the class, so they are named here rather than
 * reported again (a second finding with the same fix would hand the transform the same rewrite twice).
 */
function madeAt(ctx: RuleContext, cls: ts.ClassLikeDeclaration): string {
  const sites = ctx.flow.instantiationsOf(cls).filter((site) => ctx.isAnalyzed(site.getSourceFile()));
  if (sites.length === 0) return '';
  const where = sites.slice(0, 5).map((site) => {
    const sf = site.getSourceFile();
    return `${path.basename(sf.fileName)}:${sf.getLineAndCharacterOfPosition(site.getStart(sf)).line + 1}`;
  });
  return ` (made by \`new\` at ${where.join(', ')}${sites.length > 5 ? ', …' : ''})`;
}

/** Finds in-memory event stores (SDK `EventStore` implementations) used for resumable SSE streams. */
export default createRule({
  meta: {
    id: 'no-in-memory-event-store',
    category: 'stateful-transport',
    severity: 'error',
    description: 'In-memory event store for resumable SSE streams (Last-Event-ID)',
    fix: 'transform:event-store',
  },
  create: (ctx) => {
    const check = (cls: ts.ClassLikeDeclaration): void => {
      if (!isInMemoryEventStoreClass(ctx.flow, cls)) return;
      const name = classNameOf(cls);
      ctx.report({ node: cls.name ?? cls, symbol: name, message: `\`${name}\`${madeAt(ctx, cls)} ${MESSAGE}` });
    };
    return {
      [ts.SyntaxKind.ClassDeclaration]: (node: ts.Node) => check(node as ts.ClassDeclaration),
      [ts.SyntaxKind.ClassExpression]: (node: ts.Node) => check(node as ts.ClassExpression),
      [ts.SyntaxKind.ObjectLiteralExpression](node: ts.Node) {
        const literal = node as ts.ObjectLiteralExpression;
        if (!hasEventStoreMethods(literal.properties) || !keepsEventsInMemory(ctx.flow, literal.properties)) return;
        const target = ts.isVariableDeclaration(literal.parent) ? literal.parent.name : literal;
        const name = ts.isIdentifier(target) ? target.text : 'eventStore';
        ctx.report({ node: target, symbol: name, message: `\`${name}\` ${MESSAGE}` });
      },
      [ts.SyntaxKind.NewExpression](node: ts.Node) {
        const call = node as ts.NewExpression;
        const name = calleeName(call);
        if (!name || !/EventStore$/.test(name)) return;
        const symbol = ctx.flow.symbolAt(ts.isPropertyAccessExpression(call.expression) ? call.expression.name : call.expression);
        const decl = symbol?.declarations?.find((d) => ts.isClassLike(d)) as ts.ClassLikeDeclaration | undefined;
        if (decl && ctx.isAnalyzed(decl.getSourceFile())) return; // the class itself is reported where it is defined
        if (decl ? !/InMemory/.test(name) && !isInMemoryEventStoreClass(ctx.flow, decl) : !/^InMemory/.test(name)) return;
        ctx.report({ node: call, symbol: name, message: `\`new ${name}()\` ${MESSAGE}` });
      },
    };
  },
});
