import path from 'node:path';
import { ts } from 'ts-morph';
import { connectionRegistry } from '../analyzer/connection-registry.js';
import { createRule } from './create-rule.js';
import { classNameOf } from '../analyzer/ast.js';

const WHY =
  'Behind a round-robin load balancer the next request of a session lands on a replica whose registry has never seen it, and the client gets 400/404 and must re-initialize. ';

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
        ctx.report({
          node: c.node,
          symbol: c.name,
          message:
            `\`${c.name}\`${via} ${what} in this process's memory, looked up by \`Mcp-Session-Id\`. ` +
            WHY +
            'Run `mcp-migrate apply --store redis` to replace it with the runtime registry, which stores each handshake and rebuilds the transport on any replica, or put the server behind `mcp-migrate proxy`.',
        });
      }
    },
  }),
});
