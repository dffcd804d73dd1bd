import path from 'node:path';
import { ts } from 'ts-morph';
import { isModuleLevel } from '../analyzer/handlers.js';
import { calleeName } from '../analyzer/session-flow.js';
import { createRule, type RuleContext } from './create-rule.js';
import { classNameOf, propertyNameText } from '../analyzer/ast.js';
import { holderOf, onSameLine, returnedFrom } from '../analyzer/holders.js';
import type { FindingRef } from '../analyzer/types.js';

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
 * Where the program makes the class's stores (`new C()` sites, file:line), for the class's finding: the
 * event-store transform rewrites every one of them with the class. Each site is also reported, covered by
 * the class's finding (see {@link reportCovered}), so `apply` never hands the rewrite over twice.
 */
function madeAt(ctx: RuleContext, cls: ts.ClassLikeDeclaration): string {
  const sites = ctx.flow.instantiationsOf(cls).filter((site) => ctx.isAnalyzed(site.getSourceFile()));
  if (sites.length === 0) return '';
  const where = sites.slice(0, 5).map(at);
  return ` (made by \`new\` at ${where.join(', ')}${sites.length > 5 ? ', …' : ''})`;
}

/** `file:line` of a node (base name), as messages name places. */
function at(node: ts.Node): string {
  const sf = node.getSourceFile();
  return `${path.basename(sf.fileName)}:${sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1}`;
}

/**
 * The parts of one in-memory event store class that are its state too, each reported covered by the class's
 * finding: the fields holding the events, every `new C()` in the analyzed files, and where such a store is
 * kept: the variable, field or option (`eventStore: makeStore()`) its value goes to, directly or as the
 * result of the function that makes it.
 */
function reportCovered(ctx: RuleContext, cls: ts.ClassLikeDeclaration, cover: FindingRef): void {
  const name = classNameOf(cls);
  const same = `the in-memory event store \`${name}\` reported at its class (${at(cls.name ?? cls)}), the same events in this process's memory. ` +
    'Behind a round-robin load balancer a client resuming a stream with `Last-Event-ID` reaches another replica, which has none of them. ' +
    'It is fixed with that finding: `mcp-migrate apply --store redis` rewrites the class and every `new` of it together.';
  for (const field of eventFields(cls)) {
    ctx.report({ node: field, symbol: `${name}.${field.text}`, message: `\`${name}.${field.text}\` holds the events of ${same}`, coveredBy: cover });
  }
  // `reported`: the value is itself a finding (a `new` site), so a holder on its line adds nothing.
  const kept = (value: ts.Expression, what: string, reported: boolean): void => {
    const holder = holderOf(ctx.flow, value);
    if (holder && !(reported && onSameLine(holder, value)) && !ofStatelessTransport(ctx, holder)) ctx.report({ node: holder, symbol: holder.getText(), message: `\`${holder.getText()}\` keeps ${what}, ${same}`, coveredBy: cover });
  };
  for (const site of ctx.flow.instantiationsOf(cls)) {
    if (!ctx.isAnalyzed(site.getSourceFile())) continue;
    ctx.report({ node: site, symbol: `new ${name}`, message: `\`new ${name}()\` makes a store of ${same}`, coveredBy: cover });
    kept(site, `the store \`new ${name}()\` makes (${at(site)})`, true);
    const maker = returnedFrom(site);
    if (!maker) continue;
    for (const call of ctx.flow.callSitesOf(maker)) {
      if (ctx.isAnalyzed(call.getSourceFile())) kept(call, `the store the call at ${at(call)} returns (\`new ${name}()\`, ${at(site)})`, false);
    }
  }
}

/** The names of the fields that hold a class's events: initialized with a collection, in the field or by `this.x = new Map()` in the constructor. */
function eventFields(cls: ts.ClassLikeDeclaration): Array<ts.Identifier | ts.PrivateIdentifier> {
  const out: Array<ts.Identifier | ts.PrivateIdentifier> = [];
  for (const m of cls.members) {
    if (ts.isPropertyDeclaration(m) && m.initializer && IN_MEMORY_INIT.test(m.initializer.getText()) && (ts.isIdentifier(m.name) || ts.isPrivateIdentifier(m.name))) out.push(m.name);
    if (!ts.isConstructorDeclaration(m) || !m.body) continue;
    for (const s of m.body.statements) {
      const e = ts.isExpressionStatement(s) ? s.expression : undefined;
      if (e && ts.isBinaryExpression(e) && e.operatorToken.kind === ts.SyntaxKind.EqualsToken && ts.isPropertyAccessExpression(e.left) && e.left.expression.kind === ts.SyntaxKind.ThisKeyword && IN_MEMORY_INIT.test(e.right.getText())) out.push(e.left.name);
    }
  }
  return out;
}

/**
 * An option of a stateless transport (`{ eventStore: …, sessionIdGenerator: undefined }`): the store it gets
 * lives as long as that transport, one request, and holds no session's events.
 */
function ofStatelessTransport(ctx: RuleContext, holder: ts.Node): boolean {
  const literal = ts.isPropertyAssignment(holder.parent) ? holder.parent.parent : undefined;
  if (!literal || !ts.isObjectLiteralExpression(literal)) return false;
  const generator = literal.properties.find((p) => p.name && propertyNameText(p.name) === 'sessionIdGenerator');
  return !!generator && !(ctx.flow.statefulGenerators as readonly ts.Node[]).includes(generator);
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
      const cover = ctx.report({ node: cls.name ?? cls, symbol: name, message: `\`${name}\`${madeAt(ctx, cls)} ${MESSAGE}` });
      if (cover) reportCovered(ctx, cls, cover);
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
