import { ts } from 'ts-morph';
import { fastmcpLegacySse } from '../analyzer/frameworks.js';
import { createRule } from './create-rule.js';

const WHY =
  'Behind a round-robin load balancer those POSTs land on replicas that do not hold the stream, and the messages are lost. ' +
  'Serve Streamable HTTP instead, and keep legacy clients working across replicas with `mcp-migrate proxy`, which routes the POST endpoint to the replica holding the stream.';

/**
 * Finds the legacy HTTP+SSE transport (protocol 2024-11-05; deprecated since 2025-03-26): the SDK's
 * `SSEServerTransport`, or a framework started in its SSE mode (fastmcp `transportType: 'sse'`).
 */
export default createRule({
  meta: {
    id: 'no-sse-server-transport',
    category: 'stateful-transport',
    severity: 'warning',
    description: 'Legacy HTTP+SSE transport (SSEServerTransport), whose session lives in one open SSE stream',
    fix: 'proxy',
  },
  create: (ctx) => ({
    [ts.SyntaxKind.NewExpression](node: ts.Node) {
      if (ctx.flow.constructedClassName(node as ts.NewExpression) !== 'SSEServerTransport') return;
      ctx.report({
        node,
        symbol: 'SSEServerTransport',
        message:
          '`SSEServerTransport` (HTTP+SSE, protocol 2024-11-05) ties a session to the one SSE stream opened by `GET /sse`; the client POSTs every message to the endpoint it announced, `?sessionId=…`. ' + WHY,
      });
    },
    [ts.SyntaxKind.CallExpression](node: ts.Node) {
      const option = fastmcpLegacySse(node, ctx.checker);
      if (!option) return;
      ctx.report({
        node: option,
        symbol: "transportType: 'sse'",
        message:
          "fastmcp's `transportType: 'sse'` serves the legacy HTTP+SSE transport (protocol 2024-11-05): each session lives in the one SSE stream a client opens, and the client POSTs every message to the endpoint that stream announced. " + WHY,
      });
    },
  }),
});
