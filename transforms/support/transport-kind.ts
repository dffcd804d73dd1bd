/**
 * Whether a sessionful transport that apply found (`new X({ sessionIdGenerator, … })`) is a Node
 * Streamable HTTP transport, the kind `SessionTransportRegistry.prepareNode` restores: one whose
 * `handleRequest(req, res, parsedBody?)` takes Node's `IncomingMessage` and `ServerResponse` (SDK v1
 * `StreamableHTTPServerTransport`, v2 `NodeStreamableHTTPServerTransport`).
 *
 * Known by where its class comes from: one of those SDK classes, imported under any local name. A
 * class declared in the analyzed file itself (a server shipped as one minified bundle, the SDK inside
 * as `class vd { … }`) has no name to go by; it is known by the request handler it is used in: the
 * handler passes its own request and response parameters to `<transport>.handleRequest(req, res, …)`,
 * the Node call shape (a web-standard transport takes one `Request` and returns a `Response`; hono's
 * `@hono/mcp` takes one `Context`).
 */
import { Node, SyntaxKind, type NewExpression } from 'ts-morph';
import type { OpeningCode } from './opening-code.js';
import { requestNames } from './request-handler.js';

const NODE_TRANSPORTS = new Set(['StreamableHTTPServerTransport', 'NodeStreamableHTTPServerTransport']);

/**
 * `undefined` when `created` makes a Node Streamable HTTP transport, or a class of this file whose
 * opening code could not be found (`opening` undefined: that reason is the one to give); otherwise why
 * it is not known to be one.
 */
export function notNodeTransport(created: NewExpression, opening: OpeningCode | undefined): string | undefined {
  const callee = created.getExpression();
  const ctor = callee.getText().split('.').at(-1)!;
  const declared = Node.isIdentifier(callee) ? callee.getSymbol()?.getAliasedSymbol() ?? callee.getSymbol() : undefined;
  const importedName = declared?.getName();
  const imported = callee.getSymbol()?.getDeclarations().some((d) => Node.isImportSpecifier(d) || Node.isImportClause(d) || Node.isNamespaceImport(d));
  if (NODE_TRANSPORTS.has(ctor) || (imported && importedName && NODE_TRANSPORTS.has(importedName))) return undefined;
  const local = !imported && declared?.getDeclarations().some((d) => (Node.isClassDeclaration(d) || Node.isClassExpression(d) || Node.isVariableDeclaration(d)) && d.getSourceFile() === created.getSourceFile());
  if (local && (!opening || handlesNodeRequest(opening))) return undefined;
  return `\`${ctor}\` is not a Node Streamable HTTP transport apply can rewrite (web-standard transports: call \`registry.prepareRequest(request)\` by hand, see docs/apply.md)`;
}

/** The handler passes its own request and response to `<transport>.handleRequest(req, res, …)`. */
function handlesNodeRequest(opening: OpeningCode): boolean {
  const names = requestNames(opening.handler);
  if (!names) return false;
  return opening.handler.getDescendantsOfKind(SyntaxKind.CallExpression).some((c) => {
    const callee = c.getExpression();
    const [req, res] = c.getArguments().map((a) => a.getText());
    return Node.isPropertyAccessExpression(callee) && callee.getName() === 'handleRequest' && callee.getExpression().getText() === opening.transportVar && req === names[0] && res === names[1];
  });
}
