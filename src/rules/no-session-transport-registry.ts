import path from 'node:path';
import { ts } from 'ts-morph';
import { connectionRegistry } from '../analyzer/connection-registry.js';
import { createRule, type RuleContext } from './create-rule.js';
import { classNameOf, enclosingFunction, functionName, functionOf, returnedExpressions, skipOuter, type FunctionLike } from '../analyzer/ast.js';
import type { SessionContainer } from '../analyzer/containers.js';
import { holderOf } from '../analyzer/holders.js';
import type { FindingRef } from '../analyzer/types.js';

const WHY =
  'Behind a round-robin load balancer the next request of a session lands on a replica whose registry has never seen it, and the client gets 400/404 and must re-initialize. ';

/**
 * A registry kept in a factory's closure and reached through the object the factory returns (`const
 * transports = new Map(); … return { get: (id) => transports.get(id), acquire }`): the variables and fields
 * that keep that object (`const manager = createTransportManager()`) are reported, covered by the
 * registry's finding. Only when a function the object exposes looks the registry up by key: an object
 * that merely closes the registry's transports (a server handle's `close`) is not its registry.
 */
function reportManagerHolders(ctx: RuleContext, c: SessionContainer, registry: FindingRef): void {
  const symbol = ctx.flow.symbolAt(c.node);
  const decl = symbol?.valueDeclaration;
  if (!symbol || !decl || !ts.isVariableDeclaration(decl)) return;
  const factory = enclosingFunction(decl);
  if (!factory || !returnedExpressions(factory).some((e) => exposedFunctions(ctx, e).some((fn) => looksUp(ctx, fn, symbol)))) return;
  for (const call of ctx.flow.callSitesOf(factory)) {
    const holder = ctx.isAnalyzed(call.getSourceFile()) ? holderOf(ctx.flow, call) : undefined;
    if (!holder) continue;
    const name = holder.getText();
    ctx.report({
      node: holder,
      symbol: name,
      message:
        `\`${name}\` holds the object \`${functionName(factory) ?? 'the factory'}()\` returns, whose closure keeps the session registry \`${c.name}\` (line ${registry.line} of ${registry.file}): the same transports, looked up by \`Mcp-Session-Id\` in this process. ` +
        WHY +
        'It is fixed with the registry\'s finding (`mcp-migrate apply --store redis` rewrites the registry, and this object then reaches the runtime registry).',
      coveredBy: registry,
    });
  }
}

/** The functions an object the factory returns exposes: its methods and function-valued properties, shorthand ones included. */
function exposedFunctions(ctx: RuleContext, returned: ts.Expression): FunctionLike[] {
  const e = skipOuter(returned);
  const fn = functionOf(e);
  if (fn) return [fn];
  if (!ts.isObjectLiteralExpression(e)) return [];
  const local = (id: ts.Identifier): FunctionLike | undefined => {
    const d = ctx.flow.symbolAt(id)?.valueDeclaration;
    if (d && ts.isFunctionDeclaration(d)) return d;
    return d && ts.isVariableDeclaration(d) && d.initializer ? functionOf(d.initializer) : undefined;
  };
  return e.properties.flatMap((p): FunctionLike[] => {
    if (ts.isMethodDeclaration(p)) return [p];
    if (ts.isPropertyAssignment(p)) {
      const v = skipOuter(p.initializer);
      const f = functionOf(v) ?? (ts.isIdentifier(v) ? local(v) : undefined);
      return f ? [f] : [];
    }
    if (ts.isShorthandPropertyAssignment(p)) {
      const d = ctx.checker.getShorthandAssignmentValueSymbol(p)?.valueDeclaration;
      const f = d && (ts.isFunctionDeclaration(d) ? d : ts.isVariableDeclaration(d) && d.initializer ? functionOf(d.initializer) : undefined);
      return f ? [f] : [];
    }
    return [];
  });
}

/** `fn` reads or writes the registry by key: `registry.get(id)`, `registry.set(id, t)`, `registry[id]`. */
function looksUp(ctx: RuleContext, fn: FunctionLike, registry: ts.Symbol): boolean {
  let found = false;
  const visit = (n: ts.Node): void => {
    if (found) return;
    if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression) && KEYED.has(n.expression.name.text) && n.arguments.length > 0 && ctx.flow.symbolAt(n.expression.expression) === registry) found = true;
    else if (ts.isElementAccessExpression(n) && ctx.flow.symbolAt(n.expression) === registry) found = true;
    else ts.forEachChild(n, visit);
  };
  if (fn.body) visit(fn.body);
  return found;
}

const KEYED = new Set(['get', 'set', 'has', 'delete']);

/**
 * Finds in-process registries of transports or MCP server instances keyed by session id: however the
 * registry is reached (a parameter, an object-literal property, a class field), containers whose
 * declared values are sessionful transports or servers, and the fields that hold a class-based store
 * keeping such a registry; and a custom transport (an SDK `Transport` implementation) that keeps each
 * client's connection (a WebSocket) in a keyed field, one client session per connection.
 */
export default createRule({
  meta: {
    id: 'no-session-transport-registry',
    category: 'session-registry',
    severity: 'error',
    description: 'Transports or MCP server instances held in process, keyed by session id',
    fix: 'transform:transport-registry',
  },
  create: (ctx) => ({
    [ts.SyntaxKind.ClassDeclaration](node: ts.Node) {
      const found = connectionRegistry(node as ts.ClassDeclaration, ctx.flow);
      if (!found) return;
      ctx.report({
        node: found.field.name,
        symbol: found.name,
        fix: 'manual',
        message:
          `\`${found.name}\` keeps each client's ${found.connection} connection inside the custom transport \`${found.transport}\`, in this process: every connection is one client session multiplexed onto this process's MCP server, and the session's state exists only here. ` +
          'Behind a round-robin load balancer a client that reconnects lands on another replica, which has never seen it, and starts over; no proxy or codemod moves a live socket. ' +
          'Serve Streamable HTTP instead (its sessions can be kept in a shared store), or keep each client on one replica (sticky routing by connection) and say so in the deployment.',
      });
    },
    end() {
      for (const c of ctx.containers()) {
        if (!c.isRegistry) continue;
        if (c.reason === 'holder' && c.store) {
          const store = classNameOf(c.store);
          const sf = c.store.getSourceFile();
          const at = `${path.basename(sf.fileName)}:${sf.getLineAndCharacterOfPosition(c.store.getStart(sf)).line + 1}`;
          ctx.report({
            node: c.node,
            symbol: c.name,
            fix: 'manual',
            message:
              `\`${c.name}\` holds the server's session store, and the implementation this program gives it, \`${store}\` (${at}), keeps every session's transport in this process's memory. ` +
              WHY +
              `Give \`${c.name}\` an implementation backed by a shared store that re-creates the transport on any replica (the runtime's \`SessionTransportRegistry\` from \`mcp-migrate/runtime\`), or run the server behind \`mcp-migrate proxy\`.`,
          });
          continue;
        }
        if (c.sdkObjects) {
          ctx.report({
            node: c.node,
            symbol: c.name,
            fix: 'manual',
            message:
              `\`${c.name}\` collects the transport (or MCP server) that per-session code makes for each session, in this process's memory: one entry per session, not keyed by its id. ` +
              "Behind a round-robin load balancer each replica's collection holds only the sessions it opened or rebuilt, so whatever walks it (a broadcast, a shutdown, a lookup) misses the others, and entries stay when their session moves away. " +
              'No codemod rewrites it: keep what must reach every session in a shared store (or the runtime registry, which knows every session), and remove each entry when its session closes.',
          });
          continue;
        }
        const via = c.aliases.length > 0 ? ` (passed to ${c.aliases.map((a) => `\`${a.getText()}\``).join(', ')})` : '';
        const what = c.reason === 'type' ? 'is declared to hold sessionful transports (or servers)' : "keeps each session's transport (or server)";
        const ref = ctx.report({
          node: c.node,
          symbol: c.name,
          message:
            `\`${c.name}\`${via} ${what} in this process's memory, looked up by \`Mcp-Session-Id\`. ` +
            WHY +
            'Run `mcp-migrate apply --store redis` to replace it with the runtime registry, which stores each handshake and rebuilds the transport on any replica, or put the server behind `mcp-migrate proxy`.',
        });
        if (ref) reportManagerHolders(ctx, c, ref);
      }
    },
  }),
});
