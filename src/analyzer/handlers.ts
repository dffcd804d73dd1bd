/**
 * Where code runs: inside a request, tool, resource or prompt handler (once per request, for any
 * session), in a session-opening function (once per session), or at module load (once per process).
 */
import { ts } from 'ts-morph';
import { calleeName, enclosingFunction, isFunctionLike, skipOuter, type FunctionLike } from './session-flow.js';

/** APIs whose function arguments run per request: MCP SDK v1/v2 registrations and HTTP routers (express, hono, fastify, node:http). */
const HANDLER_REGISTRARS = new Set([
  'registerTool', 'tool', 'registerResource', 'resource', 'registerPrompt', 'prompt',
  'setRequestHandler', 'setNotificationHandler', 'fallbackRequestHandler',
  'get', 'post', 'put', 'patch', 'delete', 'all', 'use', 'route', 'on', 'handle',
  'createServer',
]);
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
  if ((ts.isCallExpression(parent) || ts.isNewExpression(parent)) && parent.arguments?.includes(fn as ts.Expression)) {
    const name = calleeName(parent);
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

/** True for a declaration at module top level (`let x` directly in the source file). */
export function isModuleLevel(decl: ts.Node): boolean {
  const statement = decl.parent?.parent;
  return !!statement && ts.isVariableStatement(statement) && ts.isSourceFile(statement.parent);
}

export function isInside(node: ts.Node, container: ts.Node): boolean {
  for (let n: ts.Node | undefined = node; n; n = n.parent) if (n === container) return true;
  return false;
}

export { isFunctionLike };
