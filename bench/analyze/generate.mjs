/**
 * Generates a realistic TypeScript MCP server tree for the analyze benchmark.
 *
 * Shape (for the default 50 domains: exactly 2,000 `.ts` files):
 * - `src/server.ts`: a Streamable HTTP entry point on `node:http` with a sessionful transport
 *   (`sessionIdGenerator: () => randomUUID()`), plus `config.ts`, `logger.ts` and
 *   `session-registry.ts` (a `Map` of transports and servers keyed by session id);
 * - `src/domains/dNN/`: 40 files each — `types.ts` (zod schemas, types imported across domains),
 *   `index.ts` (registers everything), 16 tools (`McpServer.registerTool` with zod input schemas),
 *   6 resources (`registerResource`, one of them a `ResourceTemplate`), 4 prompts (`registerPrompt`),
 *   6 services (classes with record caches and a module-level singleton), 5 utilities, and either
 *   `session-state.ts` (a session-keyed `Map`, every 5th domain) or a stateless `constants.ts`;
 * - spread across domains: a few tools writing module-level "last client" state, a few sending
 *   logging notifications, one elicitation;
 * - `tsconfig.json` (strict, NodeNext), `package.json` (`"type": "module"`), and a `node_modules`
 *   symlink to this repository's, so `tsc --noEmit` resolves `@modelcontextprotocol/sdk`, `zod` and
 *   `@types/node`. (`express` ships no types here, so the entry point uses `node:http`.)
 *
 * Domain 0 has 12 tools instead of 16, making room for the four top-level files.
 */
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const TOOLS = 16;
const RESOURCES = 6;
const PROMPTS = 4;
const SERVICES = 6;
const UTILS = 5;

const pad = (n) => String(n).padStart(2, '0');

/**
 * Writes the tree under `root` (an existing, empty directory).
 * @param {string} root absolute directory
 * @param {{ domains?: number, nodeModules: string }} options `nodeModules`: absolute path to link as `root/node_modules`
 * @returns {{ files: number, planted: Record<string, number> }} the number of `.ts` files written under
 *   `src/`, and how many places of in-process session state were planted, by rule id (what a correct
 *   analyzer should report)
 */
export function generateTree(root, { domains = 50, nodeModules }) {
  let files = 0;
  const write = (rel, text) => {
    const file = join(root, rel);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, text);
    if (rel.endsWith('.ts')) files++;
  };

  write('package.json', JSON.stringify({ name: 'bench-mcp-server', private: true, type: 'module' }, null, 2) + '\n');
  write(
    'tsconfig.json',
    JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022',
          lib: ['ES2023'],
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          skipLibCheck: true,
          noEmit: true,
          types: ['node'],
        },
        include: ['src'],
      },
      null,
      2,
    ) + '\n',
  );
  symlinkSync(nodeModules, join(root, 'node_modules'), 'dir');

  write('src/config.ts', configTs());
  write('src/logger.ts', loggerTs());
  write('src/session-registry.ts', sessionRegistryTs());
  write('src/server.ts', serverTs(domains));
  for (let d = 0; d < domains; d++) {
    for (const [rel, text] of domainFiles(d, domains)) write(`src/domains/d${pad(d)}/${rel}`, text);
  }
  const domainIds = [...Array(domains).keys()];
  const planted = {
    'no-session-transport-registry': 1,
    'no-stateful-session-id-generator': 1,
    'no-session-keyed-state': domainIds.filter((d) => d % 5 === 0).length,
    'no-global-connection-state': domainIds.filter((d) => d % 25 === 11).length,
    'server-initiated-request': domainIds.filter((d) => d % 10 === 3).length + (domains > 7 ? 1 : 0),
  };
  return { files, planted };
}

function configTs() {
  return `export interface AppConfig {
  port: number;
  name: string;
  version: string;
  logLevel: 'debug' | 'info' | 'warning' | 'error';
}

export const config: AppConfig = {
  port: Number(process.env.PORT ?? 3000),
  name: 'bench-mcp-server',
  version: '1.0.0',
  logLevel: (process.env.LOG_LEVEL as AppConfig['logLevel'] | undefined) ?? 'info',
};
`;
}

function loggerTs() {
  return `import { config } from './config.js';

const ORDER = ['debug', 'info', 'warning', 'error'] as const;
export type Level = (typeof ORDER)[number];

export function log(level: Level, message: string, fields: Record<string, unknown> = {}): void {
  if (ORDER.indexOf(level) < ORDER.indexOf(config.logLevel)) return;
  process.stderr.write(JSON.stringify({ level, message, ...fields, at: new Date().toISOString() }) + '\\n');
}
`;
}

function sessionRegistryTs() {
  return `import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';

export interface SessionEntry {
  transport: StreamableHTTPServerTransport;
  server: McpServer;
  createdAt: number;
}

/** Live sessions of this process, by Mcp-Session-Id. */
export const sessions = new Map<string, SessionEntry>();

export function getSession(sessionId: string): SessionEntry | undefined {
  return sessions.get(sessionId);
}

export function dropSession(sessionId: string): void {
  sessions.delete(sessionId);
}
`;
}

function serverTs(domains) {
  const imports = [];
  const calls = [];
  for (let d = 0; d < domains; d++) {
    imports.push(`import { registerDomain${pad(d)} } from './domains/d${pad(d)}/index.js';`);
    calls.push(`  registerDomain${pad(d)}(server);`);
  }
  return `import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { config } from './config.js';
import { log } from './logger.js';
import { dropSession, getSession, sessions } from './session-registry.js';
${imports.join('\n')}

function buildServer(): McpServer {
  const server = new McpServer({ name: config.name, version: config.version }, { capabilities: { logging: {} } });
${calls.join('\n')}
  return server;
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return chunks.length > 0 ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
}

const httpServer = createServer(async (req, res) => {
  const header = req.headers['mcp-session-id'];
  const sessionId = typeof header === 'string' ? header : undefined;
  const body = req.method === 'POST' ? await readBody(req) : undefined;
  let entry = sessionId ? getSession(sessionId) : undefined;
  if (!entry && isInitializeRequest(body)) {
    const server = buildServer();
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, server, createdAt: Date.now() });
        log('info', 'session started', { id });
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) dropSession(transport.sessionId);
    };
    await server.connect(transport);
    entry = { transport, server, createdAt: Date.now() };
  }
  if (!entry) {
    res.writeHead(400, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message: 'No valid session' }, id: null }));
    return;
  }
  await entry.transport.handleRequest(req, res, body);
});

httpServer.listen(config.port, () => log('info', 'listening', { port: config.port }));
`;
}

/** The 40 (domain 0: 36) files of one domain, as [relative path, text]. */
function* domainFiles(d, domains) {
  const D = pad(d);
  const other = pad((d + 1) % domains);
  const sessionful = d % 5 === 0;
  const tools = d === 0 ? TOOLS - 4 : TOOLS;

  yield [
    'types.ts',
    `import { z } from 'zod';
import type { Record${other} } from '../d${other}/types.js';

export const record${D}Schema = z.object({
  id: z.string(),
  name: z.string(),
  score: z.number(),
  tags: z.array(z.string()),
  updatedAt: z.number().int(),
});
export type Record${D} = z.infer<typeof record${D}Schema>;

export interface Query${D} {
  text: string;
  limit: number;
}

export interface Result${D} {
  items: Record${D}[];
  total: number;
}

/** A record with its counterpart in the next domain. */
export interface Linked${D} {
  own: Record${D};
  related?: Record${other};
}
`,
  ];

  yield sessionful
    ? [
        'session-state.ts',
        `/** What the domain remembers about each MCP session. */
export interface Domain${D}Session {
  queries: string[];
  lastSeen: number;
}

/** Per-session history, by Mcp-Session-Id. */
export const d${D}SessionState = new Map<string, Domain${D}Session>();
`,
      ]
    : [
        'constants.ts',
        `export const DOMAIN_${D} = 'd${D}';
export const DEFAULT_LIMIT_${D} = ${10 + d};
export const SEED_COUNT_${D} = ${20 + (d % 7)};
`,
      ];

  for (let u = 0; u < UTILS; u++) {
    const prev = u > 0 ? `import { score${D}_${u - 1} } from './util-${u - 1}.js';\n` : '';
    const base = u > 0 ? `score${D}_${u - 1}(r, weight) / 2` : `r.score * weight`;
    yield [
      `utils/util-${u}.ts`,
      `import type { Record${D} } from '../types.js';
${prev}
export const LIMIT_${D}_${u} = ${10 * (u + 1)};

export function score${D}_${u}(r: Record${D}, weight = ${u + 1}): number {
  return ${base} + r.tags.length;
}

export function format${D}_${u}(r: Record${D}): string {
  return \`\${r.name}#\${r.id}:\${score${D}_${u}(r).toFixed(2)}\`;
}

export function matches${D}_${u}(r: Record${D}, text: string): boolean {
  const needle = text.toLowerCase();
  return r.name.toLowerCase().includes(needle) || r.tags.some((t) => t.toLowerCase() === needle);
}
`,
    ];
  }

  for (let s = 0; s < SERVICES; s++) {
    const u = s % UTILS;
    yield [
      `services/service-${s}.ts`,
      `import type { Linked${D}, Query${D}, Record${D}, Result${D} } from '../types.js';
import { format${D}_${u}, matches${D}_${u}, score${D}_${u} } from '../utils/util-${u}.js';

/** In-memory catalogue of domain ${D} records (shared by every session: reference data, not session state). */
export class Service${D}_${s} {
  private readonly records = new Map<string, Record${D}>();

  constructor(private readonly prefix: string, seed: number) {
    for (let i = 0; i < seed; i++) {
      const id = \`\${prefix}-\${i}\`;
      this.records.set(id, { id, name: \`item \${i}\`, score: (i * 7) % 13, tags: [\`t\${i % 3}\`], updatedAt: 0 });
    }
  }

  async find(query: Query${D}): Promise<Result${D}> {
    const items = [...this.records.values()]
      .filter((r) => matches${D}_${u}(r, query.text))
      .sort((a, b) => score${D}_${u}(b) - score${D}_${u}(a))
      .slice(0, query.limit);
    return { items, total: this.records.size };
  }

  get(id: string): Record${D} | undefined {
    return this.records.get(id);
  }

  link(id: string): Linked${D} | undefined {
    const own = this.records.get(id);
    return own ? { own } : undefined;
  }

  describe(id: string): string {
    const r = this.records.get(id);
    return r ? format${D}_${u}(r) : \`\${this.prefix}: unknown \${id}\`;
  }
}

export const service${D}_${s} = new Service${D}_${s}('d${D}-${s}', ${8 + s});
`,
    ];
  }

  for (let t = 0; t < tools; t++) {
    const s = t % SERVICES;
    const u = t % UTILS;
    const usesSession = sessionful && t < 4;
    const logs = d % 10 === 3 && t === 0;
    const lastClient = d % 25 === 11 && t === 1;
    const elicits = d === 7 && t === 2;
    const needsExtra = usesSession || logs || lastClient;
    const head = [
      `import { z } from 'zod';`,
      `import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';`,
      `import { service${D}_${s} } from '../services/service-${s}.js';`,
      `import { format${D}_${u} } from '../utils/util-${u}.js';`,
      ...(usesSession ? [`import { d${D}SessionState } from '../session-state.js';`] : []),
    ];
    const pre = [];
    const body = [];
    if (lastClient) pre.push(`/** The session that called this tool last (shared by every session of the process). */`, `let lastCaller: string | undefined;`, ``);
    if (usesSession) {
      body.push(
        `    const key = extra.sessionId ?? 'anonymous';`,
        `    const state = d${D}SessionState.get(key) ?? { queries: [], lastSeen: 0 };`,
        `    state.queries.push(text);`,
        `    state.lastSeen = Date.now();`,
        `    d${D}SessionState.set(key, state);`,
      );
    }
    if (lastClient) body.push(`    lastCaller = extra.sessionId;`);
    if (logs) body.push(`    await server.sendLoggingMessage({ level: 'info', data: \`d${D}_tool${t}: \${text}\` }, extra.sessionId);`);
    if (elicits) {
      body.push(
        `    const confirm = await server.server.elicitInput({`,
        `      message: \`Search d${D} for "\${text}"?\`,`,
        `      requestedSchema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] },`,
        `    });`,
        `    if (confirm.action !== 'accept') return { content: [{ type: 'text', text: 'cancelled' }] };`,
      );
    }
    body.push(
      `    const result = await service${D}_${s}.find({ text, limit });`,
      `    const lines = result.items.map((r) => format${D}_${u}(r));`,
      `    return {`,
      `      content: [{ type: 'text', text: lines.length > 0 ? lines.join('\\n') : \`no match among \${result.total}\` }],`,
      `    };`,
    );
    yield [
      `tools/tool-${t}.ts`,
      `${head.join('\n')}

${pre.join('\n')}export function registerTool${D}_${t}(server: McpServer): void {
  server.registerTool(
    'd${D}_tool${t}',
    {
      title: 'Domain ${D} search ${t}',
      description: 'Searches domain ${D} records by name or tag (variant ${t})',
      inputSchema: {
        text: z.string().min(1).describe('Name fragment or exact tag'),
        limit: z.number().int().positive().max(100).default(10),
      },
      annotations: { readOnlyHint: ${!usesSession && !lastClient} },
    },
    async ({ text, limit }${needsExtra ? ', extra' : ''}) => {
${body.join('\n')}
    },
  );
}
`,
    ];
  }

  for (let r = 0; r < RESOURCES; r++) {
    const s = r % SERVICES;
    if (r === 0) {
      yield [
        `resources/res-${r}.ts`,
        `import { ResourceTemplate, type McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { service${D}_${s} } from '../services/service-${s}.js';

export function registerResource${D}_${r}(server: McpServer): void {
  server.registerResource(
    'd${D}-record',
    new ResourceTemplate('d${D}://records/{id}', { list: undefined }),
    { title: 'Domain ${D} record', mimeType: 'application/json' },
    async (uri, variables) => {
      const id = Array.isArray(variables.id) ? variables.id[0] : variables.id;
      const record = id ? service${D}_${s}.link(id) : undefined;
      return { contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(record ?? null) }] };
    },
  );
}
`,
      ];
      continue;
    }
    yield [
      `resources/res-${r}.ts`,
      `import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { service${D}_${s} } from '../services/service-${s}.js';

export function registerResource${D}_${r}(server: McpServer): void {
  server.registerResource(
    'd${D}-summary-${r}',
    'd${D}://summaries/${r}',
    { title: 'Domain ${D} summary ${r}', description: 'Summary of catalogue ${s}', mimeType: 'text/plain' },
    async (uri) => ({
      contents: [{ uri: uri.href, mimeType: 'text/plain', text: service${D}_${s}.describe('d${D}-${s}-${r}') }],
    }),
  );
}
`,
    ];
  }

  for (let p = 0; p < PROMPTS; p++) {
    yield [
      `prompts/prompt-${p}.ts`,
      `import { z } from 'zod';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';

export function registerPrompt${D}_${p}(server: McpServer): void {
  server.registerPrompt(
    'd${D}-prompt-${p}',
    {
      title: 'Domain ${D} prompt ${p}',
      description: 'Asks for an analysis of domain ${D} records',
      argsSchema: { topic: z.string(), tone: z.string().optional() },
    },
    ({ topic, tone }) => ({
      messages: [
        {
          role: 'user',
          content: { type: 'text', text: \`Analyse \${topic} in domain ${D}\${tone ? \` in a \${tone} tone\` : ''}.\` },
        },
      ],
    }),
  );
}
`,
    ];
  }

  const reg = [];
  const imports = [`import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';`];
  for (let t = 0; t < tools; t++) {
    imports.push(`import { registerTool${D}_${t} } from './tools/tool-${t}.js';`);
    reg.push(`  registerTool${D}_${t}(server);`);
  }
  for (let r = 0; r < RESOURCES; r++) {
    imports.push(`import { registerResource${D}_${r} } from './resources/res-${r}.js';`);
    reg.push(`  registerResource${D}_${r}(server);`);
  }
  for (let p = 0; p < PROMPTS; p++) {
    imports.push(`import { registerPrompt${D}_${p} } from './prompts/prompt-${p}.js';`);
    reg.push(`  registerPrompt${D}_${p}(server);`);
  }
  yield [
    'index.ts',
    `${imports.join('\n')}

/** Registers every tool, resource and prompt of domain ${D}. */
export function registerDomain${D}(server: McpServer): void {
${reg.join('\n')}
}
`,
  ];
}
