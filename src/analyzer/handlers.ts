/**
 * Where code runs: inside a request, tool, resource or prompt handler (once per request, for any
 * session), in a session-opening function (once per session), or at module load (once per process).
 */
import { ts } from 'ts-morph';
import { calleeName, enclosingFunction, isFunctionLike, isInside, isModuleLevel, skipOuter, type FunctionLike } from './ast.js';

/** APIs whose function arguments run per request: MCP SDK v1/v2 registrations and HTTP routers (express, hono, fastify, node:http). */
const HANDLER_REGISTRARS = new Set([
  'registerTool', 'tool', 'registerResource', 'resource', 'registerPrompt', 'prompt',
  'setRequestHandler', 'setNotificationHandler', 'fallbackRequestHandler',
  'get', 'post', 'put', 'patch', 'delete', 'all', 'use', 'route', 'handle',
  'createServer',
]);
/** `emitter.on(event, fn)` is a per-request handler only for these events (not `SIGTERM`, `listening`, `close`…). */
const REQUEST_EVENTS = new Set(['request', 'message', 'connection', 'data']);

/** Registrar calls whose handler arguments are named functions (`server.setRequestHandler(S, handleX)`): function → registration. */
const byReference = new WeakMap<ts.Node, { registrar: string; schema?: string }>();

/**
 * Records handlers passed by reference, so a function declared elsewhere (another module) and registered
 * by name counts as a handler. `resolve` maps an identifier to its declaration (through imports).
 */
export function collectHandlerReferences(call: ts.CallExpression, resolve: (n: ts.Node) => ts.Symbol | undefined): void {
  const name = calleeName(call);
  if (!name || !HANDLER_REGISTRARS.has(name)) return;
  const first = call.arguments[0];
  const schema = first && ts.isIdentifier(skipOuter(first)) ? (skipOuter(first) as ts.Identifier).text : undefined;
  for (const arg of call.arguments) {
    const e = skipOuter(arg);
    if (!ts.isIdentifier(e) && !ts.isPropertyAccessExpression(e)) continue;
    for (const decl of resolve(ts.isPropertyAccessExpression(e) ? e.name : e)?.declarations ?? []) {
      let fn: ts.Node | undefined;
      if (isFunctionLike(decl)) fn = decl;
      else if (ts.isVariableDeclaration(decl) && decl.initializer) {
        const init = skipOuter(decl.initializer);
        if (ts.isArrowFunction(init) || ts.isFunctionExpression(init)) fn = init;
      }
      if (fn) byReference.set(fn, { registrar: name, schema });
    }
  }
}
/** Request and notification schemas that `mcp-migrate proxy` replays on a cold replica (handshake replay). */
const REPLAYED_SCHEMAS = new Set([
  'InitializeRequestSchema', 'InitializedNotificationSchema', 'SetLevelRequestSchema', 'SubscribeRequestSchema', 'UnsubscribeRequestSchema',
]);
/** Lifecycle hooks that run again when a session's handshake is replayed. */
const REPLAYED_HOOKS = new Set(['oninitialized']);

/** The function itself, when it is passed to a handler registrar or assigned to a handler hook. */
export function handlerRegistration(fn: ts.Node): { registrar: string; schema?: string } | undefined {
  const parent = fn.parent;
  if (!parent) return undefined;
  const referenced = byReference.get(fn);
  if (referenced) return referenced;
  if ((ts.isCallExpression(parent) || ts.isNewExpression(parent)) && parent.arguments?.includes(fn as ts.Expression)) {
    const name = calleeName(parent);
    if (name === 'on' || name === 'once') {
      const event = parent.arguments?.[0];
      if (event && ts.isStringLiteralLike(event) && REQUEST_EVENTS.has(event.text) && !/^process$/.test(parent.expression.getText().split('.')[0] ?? '')) {
        return { registrar: name };
      }
    }
    if (name && HANDLER_REGISTRARS.has(name)) {
      const first = parent.arguments?.[0];
      const schema = first && ts.isIdentifier(skipOuter(first)) ? (skipOuter(first) as ts.Identifier).text : undefined;
      return { registrar: name, schema };
    }
  }
  if (ts.isBinaryExpression(parent) && parent.right === fn && ts.isPropertyAccessExpression(parent.left)) {
    const hook = parent.left.name.text;
    if (hook.startsWith('on')) return { registrar: hook };
  }
  return undefined;
}

/** The nearest enclosing function that is a handler (a request, tool, resource, prompt or lifecycle callback). */
export function enclosingHandler(node: ts.Node): { fn: FunctionLike; registrar: string; schema?: string } | undefined {
  for (let fn = enclosingFunction(node); fn; fn = enclosingFunction(fn)) {
    const reg = handlerRegistration(fn);
    if (reg) return { fn, ...reg };
  }
  return undefined;
}

/** True when the handler is rebuilt by handshake replay (`initialize`, `initialized`, `logging/setLevel`, `resources/subscribe`). */
export function isReplayedHandler(reg: { registrar: string; schema?: string }): boolean {
  if (REPLAYED_HOOKS.has(reg.registrar)) return true;
  return reg.schema !== undefined && REPLAYED_SCHEMAS.has(reg.schema);
}

/**
 * True for the `initialize` request's handler: a session's first request (MCP lifecycle: the client
 * sends nothing else before it), so in a process that serves one session it runs before any other.
 */
export function isHandshakeHandler(reg: { registrar: string; schema?: string }): boolean {
  return reg.schema === 'InitializeRequestSchema';
}

export { isFunctionLike, isInside, isModuleLevel };
