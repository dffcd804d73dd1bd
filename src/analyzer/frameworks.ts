/**
 * MCP server frameworks that keep the sessions of Streamable HTTP inside themselves (in
 * `node_modules`, or bundled beside the server), and what each offers to run behind a round-robin
 * load balancer. The framework is recognized from the code: the start call's callee resolves (through
 * the type checker) to the framework's API, imported from its package or declared in bundled code
 * under the same name — never from the server's own name.
 *
 * | package | sessionful when | offers |
 * |---|---|---|
 * | `fastmcp` | `server.start({ transportType: 'httpStream', httpStream })` without `httpStream.stateless: true` | `stateless: true` (each request its own session; README "Stateless mode") when the server uses no session-bound API |
 * | `fastmcp` (1.x–3.x) | `server.start({ transportType: 'sse', sse })`: one `FastMCPSession` per SSE connection in the server's session list, reported where the server is created | nothing: the legacy SSE mode has no stateless or shared-store option |
 * | `mcp-use` | `new MCPServer(options)` (`mcp-use/server`) without `stateless: true` and without both a `sessionStore` and a `streamManager`: its default `InMemorySessionStore` and `InMemoryStreamManager` | `sessionStore: new RedisSessionStore(…)` plus `streamManager: new RedisStreamManager(…)` (mcp-use docs, "Redis storage"), or `stateless: true` when no tool uses the session |
 * | `fastify-mcp` | `app.register(streamableHttp, { stateful: true, … })` | nothing that keeps a session: its `Sessions` map is in-process and `stateful: false` creates the server per request |
 * | `mcp-framework` | `new MCPServer({ transport: { type: 'http-stream' } })` | nothing: its `session` options are not read by the HTTP transport (0.2.x) |
 * | `agents` (Cloudflare) | a class extending `McpAgent` (`agents/mcp`) whose fields request code writes ({@link durableAgentFields}) | nothing to change on Workers: `McpAgent.serve()` routes every request of a session to the session's own Durable Object (owner routing by the platform) |
 */
import { ts } from 'ts-morph';

export interface FrameworkSessions {
  /** The framework's npm package. */
  framework: string;
  /** The node the finding is reported on: the start call, or the registry the server hands the framework. */
  node: ts.Node;
  /** What the code calls, for the finding's symbol. */
  api: string;
  /** The configuration change that makes the framework keep nothing per session, when it is safe; else why not. */
  change: { kind: 'stateless'; options: ts.ObjectLiteralExpression } | { kind: 'none'; why: string } | { kind: 'configure'; how: string };
}

/** Session-bound fastmcp APIs: a server using them needs its sessions, so `stateless: true` would break it. */
const FASTMCP_SESSION_API = /\.(requestSampling|roots|sessions)\b|\.on\(\s*['"](connect|disconnect|rootsChanged)['"]/;

/** The framework start a call or `new` expression is, if it is one (see the table above). */
export function frameworkSessions(node: ts.Node, checker: ts.TypeChecker, programFiles: readonly ts.SourceFile[]): FrameworkSessions | undefined {
  if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression)) {
    const method = node.expression.name.text;
    if (method === 'start' && isFrom(checker, node.expression.expression, 'FastMCP', 'fastmcp', 'type')) return fastmcp(node, checker, programFiles);
    if (method === 'register' && node.arguments[0] && isFrom(checker, node.arguments[0], 'streamableHttp', 'fastify-mcp', 'symbol')) {
      const options = objectOf(node.arguments[1], checker);
      if (options && literal(prop(options, 'stateful')) === true) {
        // The registry the server hands the framework (`sessions: new Sessions()`), else the call.
        const sessions = options.properties.find((p) => p.name && ts.isIdentifier(p.name) && p.name.text === 'sessions');
        return { framework: 'fastify-mcp', node: sessions ?? node, api: 'streamableHttp', change: { kind: 'none', why: 'fastify-mcp keeps each session\'s transport in its in-process `Sessions` map, and its `stateful: false` mode creates the MCP server per request (state the server keeps per session would be lost)' } };
      }
    }
  }
  if (ts.isNewExpression(node) && isFrom(checker, node.expression, 'MCPServer', 'mcp-use', 'symbol')) return mcpUse(node, checker);
  if (ts.isNewExpression(node) && isFrom(checker, node.expression, 'MCPServer', 'mcp-framework', 'symbol')) {
    const options = objectOf(node.arguments?.[0], checker);
    const transport = objectOf(options && prop(options, 'transport'), checker);
    if (transport && literal(prop(transport, 'type')) === 'http-stream') {
      return { framework: 'mcp-framework', node, api: 'MCPServer', change: { kind: 'none', why: 'mcp-framework keeps each session\'s transport in its HTTP transport\'s in-process map and offers no shared session store (its `session` options are not read by that transport)' } };
    }
  }
  return undefined;
}

/**
 * The `transportType: 'sse'` property of a fastmcp start call (any of the option objects it may be
 * given: `start(cond ? { transportType: 'stdio' } : { transportType: 'sse', sse })`), if there is one:
 * the legacy HTTP+SSE transport, served by fastmcp itself.
 */
export function fastmcpLegacySse(node: ts.Node, checker: ts.TypeChecker): ts.Node | undefined {
  if (!ts.isCallExpression(node) || !ts.isPropertyAccessExpression(node.expression) || node.expression.name.text !== 'start') return undefined;
  if (!isFrom(checker, node.expression.expression, 'FastMCP', 'fastmcp', 'type')) return undefined;
  for (const options of objectsOf(node.arguments[0], checker)) {
    const type = prop(options, 'transportType');
    if (literal(type) === 'sse') return type!.parent;
  }
  return undefined;
}

function fastmcp(call: ts.CallExpression, checker: ts.TypeChecker, files: readonly ts.SourceFile[]): FrameworkSessions | undefined {
  if (fastmcpLegacySse(call, checker)) {
    const receiver = (call.expression as ts.PropertyAccessExpression).expression;
    return {
      framework: 'fastmcp',
      node: constructionOf(receiver, checker) ?? call,
      api: 'FastMCP',
      change: { kind: 'none', why: 'in its legacy SSE mode fastmcp keeps one `FastMCPSession` (its own MCP server and SSE transport) per connection in the `FastMCP` instance\'s session list, and that mode has no stateless or shared-store option' },
    };
  }
  const options = objectOf(call.arguments[0], checker);
  if (!options || literal(prop(options, 'transportType')) !== 'httpStream') return undefined;
  const http = objectOf(prop(options, 'httpStream'), checker);
  if (!http || literal(prop(http, 'stateless')) === true) return undefined;
  const uses = files.filter((f) => !f.isDeclarationFile && !/[\\/]node_modules[\\/]/.test(f.fileName) && FASTMCP_SESSION_API.test(f.text)).map((f) => FASTMCP_SESSION_API.exec(f.text)![0]);
  const change: FrameworkSessions['change'] =
    uses.length > 0
      ? { kind: 'none', why: `the server uses fastmcp's sessions (\`${uses[0]}\`), which its stateless mode does not keep` }
      : { kind: 'stateless', options: http };
  return { framework: 'fastmcp', node: call, api: 'FastMCP.start', change };
}

/**
 * mcp-use's `MCPServer` serves Streamable HTTP with sessions in its default in-memory session store and
 * stream manager unless it is stateless or given both stores (mcp-use docs, "Session management").
 */
function mcpUse(node: ts.NewExpression, checker: ts.TypeChecker): FrameworkSessions | undefined {
  const options = objectOf(node.arguments?.[0], checker);
  if (options && literal(prop(options, 'stateless')) === true) return undefined;
  if (options && prop(options, 'sessionStore') && prop(options, 'streamManager')) return undefined;
  return {
    framework: 'mcp-use',
    node,
    api: 'MCPServer',
    change: {
      kind: 'configure',
      how: 'give `MCPServer` a shared `sessionStore` and `streamManager` (`RedisSessionStore` and `RedisStreamManager` from `mcp-use/server`) so that every replica finds every session, or `stateless: true` if no tool needs the session (sampling, elicitation, notifications)',
    },
  };
}

/** A field of a Cloudflare `McpAgent` subclass that holds its session's state (see {@link durableAgentFields}). */
export interface DurableAgentField {
  /** The field's declaration. */
  node: ts.PropertyDeclaration;
  /** `Class.field`. */
  name: string;
  agent: string;
  /** `storage`: it holds what wraps the Durable Object's `ctx.storage`; `handler`: a request handler writes it. */
  how: 'storage' | 'handler';
}

/**
 * Fields of a class extending Cloudflare's `McpAgent` (package `agents`) that hold the session's state.
 * `McpAgent.serve()` / `serveSSE()` give each MCP session its own Durable Object, an instance of the
 * class (agents docs, "McpAgent"), so what its methods write after construction belongs to one session:
 * a field assigned a value built from the object's `this.ctx.storage` (the session's durable storage,
 * as request code reaches it), or a field a registered request handler assigns. Fields set only by
 * initializers or the constructor are the same in every object and are not reported.
 */
export function durableAgentFields(cls: ts.ClassLikeDeclaration, checker: ts.TypeChecker, isHandler: (fn: ts.Node) => boolean): DurableAgentField[] {
  const base = cls.heritageClauses?.find((c) => c.token === ts.SyntaxKind.ExtendsKeyword)?.types[0]?.expression;
  if (!cls.name || !base || !ts.isIdentifier(base) || !isFrom(checker, base, 'McpAgent', 'agents', 'symbol')) return [];
  const fields = new Map<string, ts.PropertyDeclaration>();
  for (const m of cls.members) if (ts.isPropertyDeclaration(m) && (ts.isIdentifier(m.name) || ts.isPrivateIdentifier(m.name))) fields.set(m.name.text, m);
  const out = new Map<ts.PropertyDeclaration, DurableAgentField>();
  const visit = (n: ts.Node, inHandler: boolean): void => {
    const handler = inHandler || ((ts.isArrowFunction(n) || ts.isFunctionExpression(n)) && isHandler(n));
    if (ts.isBinaryExpression(n) && n.operatorToken.kind === ts.SyntaxKind.EqualsToken && ts.isPropertyAccessExpression(n.left) && n.left.expression.kind === ts.SyntaxKind.ThisKeyword) {
      const field = fields.get(n.left.name.text);
      const how = readsDurableStorage(n.right) ? 'storage' : handler ? 'handler' : undefined;
      if (field && how && !out.has(field)) out.set(field, { node: field, name: `${cls.name!.text}.${n.left.name.text}`, agent: cls.name!.text, how });
    }
    ts.forEachChild(n, (c) => visit(c, handler));
  };
  for (const m of cls.members) if (!ts.isConstructorDeclaration(m) && !ts.isPropertyDeclaration(m)) visit(m, false);
  return [...out.values()];
}

/** The expression reads `this.ctx.storage` (the Durable Object's storage). */
function readsDurableStorage(e: ts.Node): boolean {
  if (ts.isPropertyAccessExpression(e) && e.name.text === 'storage' && ts.isPropertyAccessExpression(e.expression) && e.expression.name.text === 'ctx' && e.expression.expression.kind === ts.SyntaxKind.ThisKeyword) return true;
  return !!ts.forEachChild(e, (c) => readsDurableStorage(c) || undefined);
}

/** The `new X(…)` an identifier was initialized with (`const server = new FastMCP(…)`), if any. */
function constructionOf(expr: ts.Node, checker: ts.TypeChecker): ts.NewExpression | undefined {
  const d = ts.isIdentifier(expr) ? checker.getSymbolAtLocation(expr)?.getDeclarations()?.[0] : undefined;
  const init = d && ts.isVariableDeclaration(d) ? d.initializer : undefined;
  return init && ts.isNewExpression(init) ? init : undefined;
}

/**
 * Whether `expr` is the framework's API `name` (`'symbol'`), or an instance made with `new name(…)`
 * (`'type'`): imported from the package `pkg` (installed or not), declared in that package under
 * `node_modules`, or declared under that name in analyzed code (a bundle that carries the framework).
 */
function isFrom(checker: ts.TypeChecker, expr: ts.Node, name: string, pkg: string, by: 'type' | 'symbol'): boolean {
  let target: ts.Node | undefined = expr;
  if (by === 'type') {
    const d = ts.isIdentifier(expr) ? checker.getSymbolAtLocation(expr)?.getDeclarations()?.[0] : undefined;
    const init = d && ts.isVariableDeclaration(d) ? d.initializer : ts.isNewExpression(expr) ? expr : undefined;
    target = init && ts.isNewExpression(init) ? init.expression : undefined;
  }
  if (!target || !ts.isIdentifier(target)) return false;
  const symbol = checker.getSymbolAtLocation(target);
  if (!symbol) return false;
  const decl = symbol.getDeclarations()?.[0];
  if (decl && ts.isImportSpecifier(decl)) {
    const module = (decl.parent.parent.parent.moduleSpecifier as ts.StringLiteral).text;
    const imported = (decl.propertyName ?? decl.name).text;
    if (module === pkg || module.startsWith(`${pkg}/`)) return imported === name;
  }
  const resolved = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
  if (resolved.getName() !== name) return false;
  const file = resolved.getDeclarations()?.[0]?.getSourceFile().fileName ?? '';
  const inPackage = file.split(/[\\/]/).join('/').includes(`/node_modules/${pkg}/`);
  return inPackage || (file !== '' && !/[\\/]node_modules[\\/]/.test(file));
}

/** The object literal an expression is, directly or through a `const`/`let` initializer. */
function objectOf(expr: ts.Node | undefined, checker: ts.TypeChecker): ts.ObjectLiteralExpression | undefined {
  if (!expr) return undefined;
  if (ts.isObjectLiteralExpression(expr)) return expr;
  if (ts.isIdentifier(expr)) {
    const d = checker.getSymbolAtLocation(expr)?.getDeclarations()?.[0];
    if (d && ts.isVariableDeclaration(d) && d.initializer && ts.isObjectLiteralExpression(d.initializer)) return d.initializer;
  }
  return undefined;
}

/** Every object literal an expression may be: itself, a `const` initializer, either branch of a conditional. */
function objectsOf(expr: ts.Node | undefined, checker: ts.TypeChecker, depth = 0): ts.ObjectLiteralExpression[] {
  if (!expr || depth > 3) return [];
  let e = expr;
  while (ts.isParenthesizedExpression(e) || ts.isAsExpression(e) || ts.isSatisfiesExpression(e)) e = e.expression;
  if (ts.isObjectLiteralExpression(e)) return [e];
  if (ts.isConditionalExpression(e)) return [...objectsOf(e.whenTrue, checker, depth + 1), ...objectsOf(e.whenFalse, checker, depth + 1)];
  if (ts.isIdentifier(e)) {
    const d = checker.getSymbolAtLocation(e)?.getDeclarations()?.[0];
    if (d && ts.isVariableDeclaration(d)) return objectsOf(d.initializer, checker, depth + 1);
  }
  return [];
}

function prop(o: ts.ObjectLiteralExpression, name: string): ts.Expression | undefined {
  for (const p of o.properties) {
    if (ts.isPropertyAssignment(p) && (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name)) && p.name.text === name) return p.initializer;
    if (ts.isShorthandPropertyAssignment(p) && p.name.text === name) return p.name;
  }
  return undefined;
}

function literal(e: ts.Expression | undefined): string | boolean | undefined {
  while (e && (ts.isAsExpression(e) || ts.isParenthesizedExpression(e) || ts.isSatisfiesExpression(e))) e = e.expression;
  if (!e) return undefined;
  if (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e)) return e.text;
  if (e.kind === ts.SyntaxKind.TrueKeyword) return true;
  if (e.kind === ts.SyntaxKind.FalseKeyword) return false;
  return undefined;
}
