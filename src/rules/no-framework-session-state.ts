import { ts } from 'ts-morph';
import { durableAgentFields, frameworkSessions } from '../analyzer/frameworks.js';
import { handlerRegistration } from '../analyzer/handlers.js';
import { createRule } from './create-rule.js';

/**
 * Finds MCP server frameworks started in a mode that keeps each Streamable HTTP session inside the
 * framework (`src/analyzer/frameworks.ts`): the state is in `node_modules` (or bundled framework
 * code), where no codemod of the server's own code can reach it.
 */
export default createRule({
  meta: {
    id: 'no-framework-session-state',
    category: 'session-registry',
    severity: 'error',
    description: 'An MCP framework started in a mode that keeps each session in the framework, in process',
    fix: 'proxy',
  },
  create: (ctx) => {
    const files: ts.SourceFile[] = [];
    const candidates: ts.Node[] = [];
    return {
      [ts.SyntaxKind.SourceFile]: (node) => void files.push(node as ts.SourceFile),
      [ts.SyntaxKind.CallExpression]: (node) => void candidates.push(node),
      [ts.SyntaxKind.NewExpression]: (node) => void candidates.push(node),
      [ts.SyntaxKind.ClassDeclaration]: (node) => {
        for (const field of durableAgentFields(node as ts.ClassDeclaration, ctx.checker, (fn) => !!handlerRegistration(fn))) {
          const what = field.how === 'storage' ? "wraps the object's `ctx.storage`, where request code keeps the session's data" : 'is written by a request handler';
          ctx.report({
            node: field.node.name,
            symbol: field.name,
            fix: 'manual',
            message:
              `\`${field.name}\` ${what}: \`${field.agent}\` extends Cloudflare's \`McpAgent\`, which gives each MCP session its own Durable Object (an instance of this class), so this field is that session's state and exists only in that object. ` +
              'Behind a round-robin load balancer of ordinary replicas no other process could serve the session. On Cloudflare Workers nothing needs to change: `McpAgent.serve()` routes every request of the session to its Durable Object (owner routing by the platform); keep what must survive the object leaving memory in `this.setState()` or `ctx.storage`. Run elsewhere, it needs owner routing (`mcp-migrate proxy`, its default).',
          });
        }
      },
      end() {
        for (const node of candidates) {
          const found = frameworkSessions(node, ctx.checker, files);
          if (!found) continue;
          const why = `${found.framework} (\`${found.api}\`) keeps each MCP session inside the framework, in this process: behind a round-robin load balancer the next request of a session lands on a replica whose framework has never seen it, and the client gets 400/404.`;
          if (found.change.kind === 'stateless') {
            ctx.report({
              node: found.node,
              symbol: found.api,
              fix: 'transform:framework-sessions',
              message: `${why} The framework offers a stateless mode (\`stateless: true\`: every request is served on its own), and this server uses none of its session-bound APIs. Run \`mcp-migrate apply\` to set it, or put the server behind \`mcp-migrate proxy\`.`,
            });
          } else if (found.change.kind === 'configure') {
            ctx.report({
              node: found.node,
              symbol: found.api,
              message: `${why} The framework can keep its sessions outside the process: ${found.change.how}. Otherwise run one \`mcp-migrate proxy --store redis://… --upstream http://127.0.0.1:<port>/mcp\` beside each replica, see docs/proxy.md.`,
            });
          } else {
            ctx.report({
              node: found.node,
              symbol: found.api,
              message: `${why} No configuration of the framework keeps the sessions elsewhere: ${found.change.why}. Run one \`mcp-migrate proxy --store redis://… --upstream http://127.0.0.1:<port>/mcp\` beside each replica (its default owner routing keeps state its tools hold per session; \`--affinity replay\` only if the handshake rebuilds all of it), see docs/proxy.md.`,
            });
          }
        }
      },
    };
  },
});
