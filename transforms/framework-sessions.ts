/**
 * `framework-sessions`: an MCP framework that keeps each Streamable HTTP session in process, started
 * in a mode the framework can run without sessions, gets that configuration
 * (`src/analyzer/frameworks.ts` decides when it is safe; `no-framework-session-state` reports it):
 *
 * - fastmcp: `server.start({ transportType: 'httpStream', httpStream: { … } })` →
 *   `httpStream: { …, stateless: true }` (fastmcp README, "Stateless mode": every request is served on
 *   its own, so any replica serves it). The analyzer only names this transform when the server uses
 *   none of fastmcp's session-bound APIs (sampling, roots, the sessions list, connect events).
 *
 * Frameworks with no such mode are not rewritten: their finding says to run the server behind
 * `mcp-migrate proxy`, and `apply` leaves a marker.
 */
import { Node, type ObjectLiteralExpression } from 'ts-morph';
import { indentOf } from '../src/apply/edits.js';
import { defineTransform, type LocatedFinding, type TransformContext } from './define-transform.js';

export default defineTransform({
  id: 'framework-sessions',
  title: 'MCP framework sessions in process → the framework\'s stateless mode',
  fixes: ['no-framework-session-state'],
  run(ctx) {
    for (const f of ctx.findings) {
      const http = httpStreamOptions(f.node);
      if (!http) {
        ctx.todo(f, 'the httpStream options are not an object literal apply can edit: add `stateless: true` to them by hand (fastmcp "Stateless mode"), or run the server behind `mcp-migrate proxy`');
        continue;
      }
      addStateless(ctx, f, http);
      ctx.changed(f, 'fastmcp serves Streamable HTTP statelessly (`httpStream.stateless: true`): every request is served on its own, by any replica');
    }
  },
});

/** The `httpStream` object literal of `server.start({ …, httpStream: { … } })` (directly or through a `const`). */
function httpStreamOptions(call: Node): ObjectLiteralExpression | undefined {
  if (!Node.isCallExpression(call)) return undefined;
  let options: Node | undefined = call.getArguments()[0];
  if (options && Node.isIdentifier(options)) {
    const d = options.getSymbol()?.getDeclarations()[0];
    options = d && Node.isVariableDeclaration(d) ? d.getInitializer() : undefined;
  }
  if (!options || !Node.isObjectLiteralExpression(options)) return undefined;
  const http = options.getProperty('httpStream');
  const init = http && Node.isPropertyAssignment(http) ? http.getInitializer() : undefined;
  return init && Node.isObjectLiteralExpression(init) ? init : undefined;
}

function addStateless(ctx: TransformContext, f: LocatedFinding, http: ObjectLiteralExpression): void {
  const sf = f.sourceFile;
  const existing = http.getProperty('stateless');
  if (existing && Node.isPropertyAssignment(existing)) {
    const v = existing.getInitializerOrThrow();
    ctx.replace(sf, v.getStart(), v.getEnd(), 'true');
    return;
  }
  const props = http.getProperties();
  const last = props.at(-1);
  if (!last) {
    ctx.replace(sf, http.getStart(), http.getEnd(), '{ stateless: true }');
    return;
  }
  const text = sf.getFullText();
  const multiline = text.slice(http.getStart(), http.getEnd()).includes('\n');
  const comma = text.slice(last.getEnd()).trimStart().startsWith(',');
  const at = comma ? text.indexOf(',', last.getEnd()) + 1 : last.getEnd();
  const sep = comma ? '' : ',';
  ctx.insert(sf, at, multiline ? `${sep}\n${indentOf(text, last.getStart())}stateless: true${comma ? ',' : ''}` : `${sep} stateless: true`);
}
