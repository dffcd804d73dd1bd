// An MCP server on fastify with the `fastify-mcp` plugin (from npm) in its stateful mode: the plugin
// creates each session's Streamable HTTP transport and keeps it in the `Sessions` map the server hands
// it, in this process. Tools: `echo`. Written for the tests (no published server on fastify-mcp was
// found); the session handling under test is the plugin's own code in node_modules.
//
// Listens on 127.0.0.1:$PORT, endpoint /mcp.
import { fastify } from 'fastify';
import { Sessions, streamableHttp } from 'fastify-mcp';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';

const app = fastify();

app.register(streamableHttp, {
  stateful: true,
  mcpEndpoint: '/mcp',
  sessions: new Sessions(),
  createServer: () => {
    const server = new McpServer({ name: 'fastify-mcp-sessions', version: '1.0.0' });
    server.registerTool('echo', { description: 'Echoes a message', inputSchema: { message: z.string() } }, async ({ message }) => ({ content: [{ type: 'text', text: message }] }));
    return server.server;
  },
});

await app.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' });
