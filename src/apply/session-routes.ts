/**
 * Which of a server's own HTTP routes act for one session, found by data flow (docs/apply.md "Owner
 * affinity"): an MCP handler (or a route the registry guards) builds a URL with the session id in its
 * query (`` `${base}/approve?session=${extra.sessionId}&…` ``: the URL of a URL-mode elicitation, or any
 * link it gives the client), and a route registered on that URL's path reads that query parameter
 * (GET), or reads a field of a form that the GET route's page fills from that parameter and posts back.
 * Such a route can run on the session's owner (`registry.ownerRoute(locator)`, packages/runtime
 * `owner-route.ts`), so the session-keyed state it reaches is owned like the MCP handlers' uses.
 *
 * The session id is what the SDK gives a handler (`extra.sessionId` of an MCP request handler) or the
 * `Mcp-Session-Id` request header, followed through variables and function parameters (every call
 * passes it), {@link MAX_DEPTH} deep. Routes are matched by their registered path (a string literal);
 * URLs only from template literals of the route's own file; the route must use the file's one Node
 * runtime registry (what the middleware is called on).
 */
import { Node, ts, type CallExpression, type SourceFile } from 'ts-morph';
import { handlerRegistration } from '../analyzer/handlers.js';
import { SESSION_HEADER, SESSION_ID_PROPERTIES } from '../analyzer/session-flow.js';
import { runtimeRegistries } from '../../transforms/support/registry-affinity.js';

/** Route registrars by HTTP method (Express, and routers with the same shape). */
const METHODS: Record<string, string> = { get: 'GET', post: 'POST', put: 'PUT', patch: 'PATCH', delete: 'DELETE', all: 'ALL' };
/** Variables and parameters followed to find a session id. */
const MAX_DEPTH = 4;
/** The middleware the registry offers (runtime `SessionTransportRegistry.ownerRoute`). */
export const OWNER_ROUTE_METHOD = 'ownerRoute';

/** A route that acts for a session: its registration, the registry it goes through, the locator's source text. */
export interface SessionRoute {
  call: CallExpression;
  registry: string;
  /** `{ query: 'session' }` or `{ body: 'session' }` (runtime `SessionLocator`). */
  locator: string;
}

/** A URL some code gives out with the session id in query parameter `param`. */
interface SessionUrl {
  path: string;
  param: string;
}

/** Whether the route whose handler is `fn` already goes through `registry.ownerRoute(…)` or `(req, res, next) => registry.ownerRoute(…)(req, res, next)` (an earlier run). */
export function isOwnerRouted(fn: Node): boolean {
  const call = fn.getParent();
  if (!call || !Node.isCallExpression(call)) return false;
  return call.getArguments().some((a) => isOwnerRouteCall(a) || (Node.isArrowFunction(a) && Node.isCallExpression(a.getBody()) && isOwnerRouteCall((a.getBody() as CallExpression).getExpression())));
}

/** `registry.ownerRoute(…)`. */
function isOwnerRouteCall(n: Node): boolean {
  return Node.isCallExpression(n) && Node.isPropertyAccessExpression(n.getExpression()) && n.getExpression().getText().endsWith(`.${OWNER_ROUTE_METHOD}`);
}

/** The {@link SessionRoute} of the route whose handler is `fn`, or undefined when no session id is proved to reach it. */
export function sessionRouteOf(fn: Node): SessionRoute | undefined {
  const call = fn.getParent();
  if (!call || !Node.isCallExpression(call) || !call.getArguments().includes(fn)) return undefined;
  const route = routeOf(call);
  if (!route) return undefined;
  const registry = registryName(call.getSourceFile());
  if (!registry) return undefined;
  const urls = sessionUrls(call.getSourceFile());
  for (const url of urls) {
    if (url.path === route.path && (route.method === 'GET' || route.method === 'ALL') && readsField(fn, 'query', url.param)) {
      return { call, registry, locator: `{ query: ${quote(url.param)} }` };
    }
  }
  if (route.method === 'GET') return undefined;
  for (const url of urls) {
    for (const page of routesOn(call.getSourceFile(), url.path, 'GET')) {
      for (const field of formFields(page, url.param, route.path)) {
        if (readsField(fn, 'body', field)) return { call, registry, locator: `{ body: ${quote(field)} }` };
      }
    }
  }
  return undefined;
}

/** `app.METHOD('/path', …handlers)`: the method and literal path. */
function routeOf(call: CallExpression): { method: string; path: string } | undefined {
  const callee = call.getExpression();
  if (!Node.isPropertyAccessExpression(callee)) return undefined;
  const method = METHODS[callee.getName()];
  const first = call.getArguments()[0];
  if (!method || !first || !Node.isStringLiteral(first) && !Node.isNoSubstitutionTemplateLiteral(first)) return undefined;
  return { method, path: first.getLiteralText() };
}

/** The handlers of the file's routes on `path` by `method`. */
function routesOn(sf: SourceFile, path: string, method: string): Node[] {
  return sf.getDescendantsOfKind(ts.SyntaxKind.CallExpression).flatMap((call) => {
    const r = routeOf(call);
    if (!r || r.path !== path || (r.method !== method && r.method !== 'ALL')) return [];
    return call.getArguments().filter((a) => Node.isArrowFunction(a) || Node.isFunctionExpression(a));
  });
}

/** The variable holding the file's one Node runtime registry (what the middleware is called on). */
function registryName(sf: SourceFile): string | undefined {
  const names = runtimeRegistries(sf)
    .filter((r) => r.kind === 'node')
    .map((r) => r.node.getParent())
    .flatMap((p) => (p && Node.isVariableDeclaration(p) && Node.isIdentifier(p.getNameNode()) ? [p.getName()] : []));
  return names.length === 1 ? names[0] : undefined;
}

/** Every URL of the file's template literals with a session id as the whole value of a query parameter. */
function sessionUrls(sf: SourceFile): SessionUrl[] {
  const out: SessionUrl[] = [];
  for (const t of sf.getDescendantsOfKind(ts.SyntaxKind.TemplateExpression)) {
    let text = t.getHead().getLiteralText();
    for (const span of t.getTemplateSpans()) {
      const param = /[?&]([A-Za-z0-9_.~-]+)=$/.exec(text)?.[1];
      if (param && isSessionId(span.getExpression(), 0)) {
        const path = urlPath(text.slice(0, text.indexOf('?')));
        if (path) out.push({ path, param });
      }
      text += '\u0000' + span.getLiteral().getLiteralText();
    }
  }
  return out;
}

/** The path of a URL's text before its query: after its last substitution (a base URL) or its `scheme://host`. */
function urlPath(beforeQuery: string): string | undefined {
  let rest = beforeQuery.slice(beforeQuery.lastIndexOf('\u0000') + 1);
  const scheme = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i.exec(rest);
  if (scheme) rest = rest.slice(scheme[0].length);
  return rest.startsWith('/') && !rest.includes('\u0000') ? rest : undefined;
}

/** Whether `expr` is a session id: `extra.sessionId` of an MCP handler, the `Mcp-Session-Id` header, or a variable or parameter only ever given one. */
function isSessionId(expr: Node, depth: number): boolean {
  if (depth > MAX_DEPTH) return false;
  const e = skip(expr);
  if (Node.isPropertyAccessExpression(e) && SESSION_ID_PROPERTIES.has(e.getName())) return isMcpHandlerParameter(e.getExpression());
  if (Node.isElementAccessExpression(e)) {
    const key = e.getArgumentExpression();
    return !!key && Node.isStringLiteral(key) && key.getLiteralText().toLowerCase() === SESSION_HEADER && /\.headers$/.test(e.getExpression().getText());
  }
  if (!Node.isIdentifier(e)) return false;
  const decls = e.getSymbol()?.getDeclarations() ?? [];
  return decls.length > 0 && decls.every((d) => declaredSessionId(d, depth));
}

function declaredSessionId(d: Node, depth: number): boolean {
  if (Node.isVariableDeclaration(d)) {
    const init = d.getInitializer();
    return !!init && Node.isIdentifier(d.getNameNode()) && isSessionId(init, depth + 1);
  }
  if (Node.isBindingElement(d)) {
    // `const { sessionId } = extra`
    const key = d.getPropertyNameNode()?.getText() ?? d.getName();
    const pattern = d.getParent()?.getParent();
    return SESSION_ID_PROPERTIES.has(key) && !!pattern && Node.isVariableDeclaration(pattern) && isMcpHandlerParameter(pattern.getInitializer());
  }
  if (Node.isParameterDeclaration(d)) {
    const fn = d.getParent();
    const index = fn && 'getParameters' in fn ? (fn as unknown as { getParameters(): Node[] }).getParameters().indexOf(d) : -1;
    const name = fn && functionNameNode(fn);
    if (index < 0 || !name || !Node.isReferenceFindable(name)) return false;
    const calls = name.findReferencesAsNodes().filter((r) => r !== name).map((r) => r.getParent());
    return calls.length > 0 && calls.every((c) => !!c && Node.isCallExpression(c) && !!c.getArguments()[index] && isSessionId(c.getArguments()[index]!, depth + 1));
  }
  return false;
}

/**
 * Whether `e` is the `extra` of a function registered as an MCP request handler: its last parameter
 * (`(request, extra)`, `(args, extra)`, `(extra)`), never the request or the tool's arguments, which the
 * client writes.
 */
function isMcpHandlerParameter(e: Node | undefined): boolean {
  if (!e || !Node.isIdentifier(skip(e))) return false;
  return (skip(e).getSymbol()?.getDeclarations() ?? []).some((d) => {
    if (!Node.isParameterDeclaration(d)) return false;
    const fn = d.getParentOrThrow();
    if (!Node.isFunctionLikeDeclaration(fn) || fn.getParameters().at(-1) !== d) return false;
    const reg = handlerRegistration(fn.compilerNode);
    return !!reg && !(reg.registrar in METHODS) && !['use', 'route', 'handle', 'createServer', 'on'].includes(reg.registrar);
  });
}

/** The name a function is called by: its own, or the variable or property it initializes. */
export function functionNameNode(fn: Node): Node | undefined {
  if (Node.isFunctionDeclaration(fn) || Node.isMethodDeclaration(fn)) return fn.getNameNode();
  const p = fn.getParent();
  if (p && (Node.isVariableDeclaration(p) || Node.isPropertyAssignment(p) || Node.isPropertyDeclaration(p)) && p.getInitializer() === fn) return p.getNameNode();
  return undefined;
}

/** Whether the handler reads `req.<part>.<name>` (`req.query.session`, `req.body['session']`, `const { session } = req.body`). */
function readsField(fn: Node, part: 'query' | 'body', name: string): boolean {
  return fn.getDescendants().some((n) => {
    if (Node.isPropertyAccessExpression(n) && n.getName() === part) {
      const p = n.getParent();
      if (p && Node.isPropertyAccessExpression(p) && p.getName() === name) return true;
      if (p && Node.isElementAccessExpression(p) && p.getArgumentExpression()?.getText().slice(1, -1) === name) return true;
      if (p && Node.isVariableDeclaration(p) && Node.isObjectBindingPattern(p.getNameNode())) {
        return p.getNameNode().getDescendantsOfKind(ts.SyntaxKind.BindingElement).some((b) => (b.getPropertyNameNode()?.getText() ?? b.getName()) === name);
      }
    }
    return false;
  });
}

/**
 * The fields of the forms a GET route's page posts to `action` that it fills with its query parameter
 * `param`: `<input name="F" value="${v}">` where `v` is read from `req.query.param`.
 */
function formFields(page: Node, param: string, action: string): string[] {
  const fields: string[] = [];
  for (const t of page.getDescendantsOfKind(ts.SyntaxKind.TemplateExpression)) {
    const html = t.getHead().getLiteralText() + t.getTemplateSpans().map((s) => '\u0000' + s.getLiteral().getLiteralText()).join('');
    const form = /<form\b[^>]*>/i.exec(html)?.[0];
    if (!form || !/method\s*=\s*["']?post/i.test(form) || (/action\s*=/i.test(form) && !new RegExp(`action\\s*=\\s*["']?${escapeRe(action)}["'\\s>]`, 'i').test(form))) continue;
    for (const input of html.matchAll(/<input\b[^>]*>/gi)) {
      const name = /\bname\s*=\s*["']([^"']+)["']/i.exec(input[0])?.[1];
      const valueAt = /\bvalue\s*=\s*["']?\u0000/i.exec(input[0]);
      if (!name || !valueAt) continue;
      // The substitution after `value=`: as many placeholders precede it as spans before it.
      const index = html.slice(0, input.index + valueAt.index + valueAt[0].length).split('\u0000').length - 2;
      const v = t.getTemplateSpans()[index]?.getExpression();
      if (v && fromQuery(v, param)) fields.push(name);
    }
  }
  return fields;
}

/** Whether `v` is `req.query.param` or a variable initialized from it. */
function fromQuery(v: Node, param: string): boolean {
  const e = skip(v);
  if (Node.isPropertyAccessExpression(e)) return e.getName() === param && /\.query$/.test(e.getExpression().getText());
  if (!Node.isIdentifier(e)) return false;
  return (e.getSymbol()?.getDeclarations() ?? []).some((d) => {
    if (Node.isVariableDeclaration(d)) return !!d.getInitializer() && fromQuery(d.getInitializer()!, param);
    if (!Node.isBindingElement(d)) return false;
    const decl = d.getParent()?.getParent();
    return (d.getPropertyNameNode()?.getText() ?? d.getName()) === param && !!decl && Node.isVariableDeclaration(decl) && /\.query$/.test(decl.getInitializer()?.getText() ?? '');
  });
}

function skip(n: Node): Node {
  let e = n;
  while (Node.isParenthesizedExpression(e) || Node.isAsExpression(e) || Node.isNonNullExpression(e)) e = e.getExpression();
  return e;
}

function quote(s: string): string {
  return `'${s.replace(/['\\]/g, '\\$&')}'`;
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
