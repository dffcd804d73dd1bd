// An original (unmigrated) sessionful MCP server on Express that completes URL-mode elicitations from a
// browser route, as the SDK's URL elicitation example does (spec: Elicitation, URL mode; the server
// tells the client with `notifications/elicitation/complete`):
//   - tool `purchase {item}` throws `UrlElicitationRequiredError` whose URL is
//     `$PUBLIC_URL/approve?session=<session id>&elicitation=<id>`; the waiting completion (a closure
//     that sends the notification on this session) is kept in process, in a Map keyed by elicitation id;
//   - `GET /approve` answers a form that posts `session` and `elicitation` back to `POST /approve`;
//   - `POST /approve` (express.urlencoded()) completes the elicitation and answers "Approved". Like the
//     SDK example, an unknown elicitation id is only logged: the page still says "Approved".
// The tool's error message names the replica that ran it (REPLICA), so a test sees the session's owner.
//
// Listens on 127.0.0.1:$PORT, endpoint /mcp; logs "url-elicitation server listening on <url>".
import { randomUUID } from 'node:crypto';
import express from 'express';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { CallToolRequestSchema, isInitializeRequest, ListToolsRequestSchema, UrlElicitationRequiredError } from '@modelcontextprotocol/sdk/types.js';

const PORT = Number(process.env.PORT ?? 3000);
const PUBLIC_URL = process.env.PUBLIC_URL ?? `http://127.0.0.1:${PORT}`;
const REPLICA = process.env.REPLICA ?? 'replica';

const transports = {};
const waiting = new Map();

function track(sessionId, makeNotifier) {
  const elicitationId = randomUUID();
  waiting.set(elicitationId, { sessionId, notify: makeNotifier(elicitationId), done: false });
  return elicitationId;
}

function complete(elicitationId) {
  const entry = waiting.get(elicitationId);
  if (!entry) {
    console.warn(`unknown elicitation ${elicitationId}`);
    return;
  }
  if (entry.done) return;
  entry.done = true;
  entry.notify().catch((err) => console.error(`could not notify: ${err}`));
}

function createServer() {
  const server = new Server({ name: 'url-elicitation', version: '1.0.0' }, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({
    tools: [{ name: 'purchase', description: 'Buy an item after the user approves it in a browser', inputSchema: { type: 'object', properties: { item: { type: 'string' } }, required: ['item'] } }],
  }));
  server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
    if (request.params.name !== 'purchase') return { isError: true, content: [{ type: 'text', text: 'unknown tool' }] };
    const sessionId = extra.sessionId;
    const elicitationId = track(sessionId, (id) => server.createElicitationCompletionNotifier(id));
    throw new UrlElicitationRequiredError([
      { mode: 'url', message: `Approve ${request.params.arguments?.item} (asked by ${REPLICA})`, url: `${PUBLIC_URL}/approve?session=${sessionId}&elicitation=${elicitationId}`, elicitationId },
    ]);
  });
  return server;
}

const app = express();
app.use(express.json());

app.get('/approve', (req, res) => {
  const { session, elicitation } = req.query;
  if (!session || !elicitation) return res.status(400).send('<h1>Missing parameters</h1>');
  res.send(`<form method="POST" action="/approve"><input type="hidden" name="session" value="${session}"><input type="hidden" name="elicitation" value="${elicitation}"><button>Approve</button></form>`);
});

app.post('/approve', express.urlencoded({ extended: false }), (req, res) => {
  const { session, elicitation } = req.body;
  if (!session || !elicitation) return res.status(400).send('<h1>Missing parameters</h1>');
  complete(elicitation);
  res.send('<h1>Approved</h1>');
});

app.post('/mcp', async (req, res) => {
  const sessionId = req.headers['mcp-session-id'];
  let transport = sessionId ? transports[sessionId] : undefined;
  if (!transport) {
    if (sessionId) return res.status(404).json({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } });
    if (!isInitializeRequest(req.body)) return res.status(400).json({ jsonrpc: '2.0', id: null, error: { code: -32000, message: 'Bad Request' } });
    const created = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        transports[id] = created;
      },
    });
    created.onclose = () => {
      if (created.sessionId) delete transports[created.sessionId];
    };
    await createServer().connect(created);
    transport = created;
  }
  await transport.handleRequest(req, res, req.body);
});

const otherMethods = async (req, res) => {
  const sessionId = req.headers['mcp-session-id'];
  const transport = sessionId ? transports[sessionId] : undefined;
  if (!transport) return res.status(404).json({ jsonrpc: '2.0', id: null, error: { code: -32001, message: 'Session not found' } });
  await transport.handleRequest(req, res);
};
app.get('/mcp', otherMethods);
app.delete('/mcp', otherMethods);

app.listen(PORT, '127.0.0.1', () => console.log(`url-elicitation server listening on http://127.0.0.1:${PORT}/mcp`));
