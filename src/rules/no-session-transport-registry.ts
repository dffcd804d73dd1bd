import { createRule } from './create-rule.js';

/** Finds in-process registries of transports or MCP server instances keyed by session id. */
export default createRule({
  meta: {
    id: 'no-session-transport-registry',
    category: 'session-registry',
    severity: 'error',
    description: 'Transports or MCP server instances held in process, keyed by session id',
    fix: 'transform:transport-registry',
  },
  create: (ctx) => ({
    end() {
      for (const c of ctx.containers()) {
        if (!c.isRegistry) continue;
        ctx.report({
          node: c.node,
          symbol: c.name,
          message:
            `\`${c.name}\` keeps each session's transport (or server) in this process's memory, looked up by \`Mcp-Session-Id\`. ` +
            'Behind a round-robin load balancer the next request of a session lands on a replica whose registry has never seen it, and the client gets 400/404 and must re-initialize. ' +
            'Run `mcp-migrate apply --store redis` to replace it with the runtime registry, which stores each handshake and rebuilds the transport on any replica, or put the server behind `mcp-migrate proxy`.',
        });
      }
    },
  }),
});
