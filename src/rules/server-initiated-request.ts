import { ts } from 'ts-morph';
import { skipOuter } from '../analyzer/session-flow.js';
import { createRule } from './create-rule.js';

/** Server→client requests: the client answers with a new POST, which must reach the pending request. */
const REQUESTS = new Set(['createMessage', 'elicitInput', 'listRoots', 'requestSampling']);
/** Notifications sent outside a request's own stream: they go to the session's standalone GET stream. */
const NOTIFICATIONS = new Set(['sendLoggingMessage', 'sendResourceUpdated', 'sendResourceListChanged', 'sendToolListChanged', 'sendPromptListChanged']);
const SERVER_RECEIVER = /server|mcpReq$/i;

/** `{ method: 'sampling/createMessage', … }`, inline or through a variable initialized with one. */
function isRequestObject(flow: { symbolAt(n: ts.Node): ts.Symbol | undefined }, arg: ts.Expression): boolean {
  let e = skipOuter(arg);
  if (ts.isIdentifier(e)) {
    const decl = flow.symbolAt(e)?.valueDeclaration;
    if (!decl || !ts.isVariableDeclaration(decl) || !decl.initializer) return false;
    e = skipOuter(decl.initializer);
  }
  return ts.isObjectLiteralExpression(e) && e.properties.some((p) => p.name !== undefined && p.name.getText() === 'method');
}

/**
 * Server-to-client calls that need a live stream to the client (spec 2025-11-25 Streamable HTTP,
 * "Listening for Messages from the Server"; SDK v1 `Server.createMessage/elicitInput/listRoots`,
 * `Server.notification` with no related request → standalone GET stream). Informational: reported
 * only in files of a sessionful server (`SessionFlow.isStatefulFile`), since that is when routing them
 * across replicas matters.
 */
export default createRule({
  meta: {
    id: 'server-initiated-request',
    category: 'server-initiated-request',
    severity: 'note',
    description: 'Server-to-client request or notification that needs a live stream to the client',
    fix: 'proxy',
  },
  create: (ctx) => ({
    [ts.SyntaxKind.CallExpression](node: ts.Node) {
      if (!ctx.flow.isStatefulFile(node.getSourceFile())) return;
      const call = node as ts.CallExpression;
      const callee = skipOuter(call.expression);
      if (!ts.isPropertyAccessExpression(callee)) return;
      const method = callee.name.text;
      const receiver = callee.expression.getText();
      let kind: 'request' | 'notification' | undefined;
      if (REQUESTS.has(method) && SERVER_RECEIVER.test(receiver)) kind = 'request';
      else if (NOTIFICATIONS.has(method)) kind = 'notification';
      else if (method === 'notification' && SERVER_RECEIVER.test(receiver)) kind = 'notification';
      else if (method === 'sendRequest' && call.arguments[0] && isRequestObject(ctx.flow, call.arguments[0])) kind = 'request';
      if (!kind) return;
      ctx.report({
        node: call,
        symbol: method,
        message:
          kind === 'request'
            ? `\`${method}\` sends a request to the client on an SSE stream and waits for the answer, which the client POSTs back as a new HTTP request. ` +
              'Behind a round-robin load balancer that POST can land on a replica that does not hold the pending request, and the call times out. ' +
              '`mcp-migrate proxy` routes the answer to the replica that asked.'
            : `\`${method}\` sends a notification outside any request's stream, so it goes to the session's standalone GET stream. ` +
              'Behind a round-robin load balancer that stream is usually held by another replica, and the notification is dropped. ' +
              '`mcp-migrate proxy` relays it to the replica holding the stream.',
      });
    },
  }),
});
