import { ts } from 'ts-morph';
import { createRule } from './create-rule.js';

/**
 * Finds Streamable HTTP transports created with a `sessionIdGenerator` that returns an id (SDK v1/v2:
 * an undefined generator makes the transport stateless; any other value makes it sessionful).
 */
export default createRule({
  meta: {
    id: 'no-stateful-session-id-generator',
    category: 'stateful-transport',
    severity: 'error',
    description: 'Streamable HTTP transport with a sessionIdGenerator that returns an id (a sessionful transport)',
    fix: 'transform:transport-registry',
  },
  create: (ctx) => ({
    end() {
      for (const prop of ctx.flow.statefulGenerators) {
        const init = ts.isPropertyAssignment(prop) ? prop.initializer : undefined;
        const captured = !!init && /=>\s*[A-Za-z_$][\w$]*\s*$/.test(init.getText()) && !ts.isCallExpression(init);
        ctx.report({
          node: prop,
          symbol: 'sessionIdGenerator',
          message:
            `This transport is sessionful: its \`sessionIdGenerator\` ${captured ? 'returns a captured constant' : 'returns an id'} that becomes the \`Mcp-Session-Id\`, and the SDK then rejects any request whose id this transport instance did not issue (400 "Server not initialized" on a fresh instance). ` +
            'Behind a round-robin load balancer only the replica that ran `initialize` holds the instance. ' +
            'Run `mcp-migrate apply --store redis` (the runtime registry re-creates the transport on any replica by replaying the stored handshake with the same id), put it behind `mcp-migrate proxy`, or set `sessionIdGenerator: undefined` and create a server and transport per request if the server needs no session.',
        });
      }
    },
  }),
});
