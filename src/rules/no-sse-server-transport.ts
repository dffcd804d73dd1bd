import { ts } from 'ts-morph';
import { createRule } from './create-rule.js';

/** Finds the legacy HTTP+SSE transport (protocol 2024-11-05; deprecated since 2025-03-26). */
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
          '`SSEServerTransport` (HTTP+SSE, protocol 2024-11-05) ties a session to the one SSE stream opened by `GET /sse`; the client POSTs every message to the endpoint it announced, `?sessionId=…`. ' +
          'Behind a round-robin load balancer those POSTs land on replicas that do not hold the stream, and the messages are lost. ' +
          'Serve Streamable HTTP instead, and keep legacy clients working across replicas with `mcp-migrate proxy`, which routes the POST endpoint to the replica holding the stream.',
      });
    },
  }),
});
