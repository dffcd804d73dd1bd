import { ts } from 'ts-morph';
import { authProviderState, type AuthProviderState } from '../analyzer/auth-provider-state.js';
import { HandleTableIndex, tableSweeps, type HandleTable } from '../analyzer/handle-tables.js';
import { containsNode, ProcessStateIndex, type ProcessStateWrite } from '../analyzer/process-state.js';
import { notPlainData } from '../analyzer/plain-data.js';
import type { Fix } from '../analyzer/types.js';
import { createRule } from './create-rule.js';

/** Kinds whose visit feeds the process-state index: handler functions, calls (call sites, fs calls), `new` (transports) and object-literal properties (functions held by definition objects). */
const VISITED = [
  ts.SyntaxKind.ArrowFunction,
  ts.SyntaxKind.FunctionExpression,
  ts.SyntaxKind.FunctionDeclaration,
  ts.SyntaxKind.MethodDeclaration,
  ts.SyntaxKind.Constructor,
  ts.SyntaxKind.CallExpression,
  ts.SyntaxKind.NewExpression,
  ts.SyntaxKind.BinaryExpression,
  ts.SyntaxKind.PropertyAssignment,
] as const;

/** The codemod for keyed process-level maps (`transforms/shared-map.ts`). */
const SHARED_MAP: Fix = 'transform:shared-map';

/** Whether the holder or field declared at `name` starts as `new Map(…)` (`const m = new Map()`, `m = new Map()`, `this.m = new Map()`). */
function initializedToMap(name: ts.Node): boolean {
  const p = name.parent;
  const init = p && (ts.isVariableDeclaration(p) || ts.isPropertyDeclaration(p)) ? p.initializer : p && ts.isPropertyAccessExpression(p) && ts.isBinaryExpression(p.parent) && p.parent.left === p ? p.parent.right : undefined;
  return !!init && ts.isNewExpression(init) && ts.isIdentifier(init.expression) && init.expression.text === 'Map';
}

/**
 * Whether `w` writes the map declared at `map` itself (`map.set(key, value)`, `this.map.delete(key)`; not
 * a map read from it) with a value that is plain data by type (`plain-data.ts`), and the map's declared value type, if
 * any, is plain data too.
 */
function writesPlainData(map: ts.Node, w: ProcessStateWrite, checker: ts.TypeChecker): boolean {
  const call = w.node;
  if (w.kind !== 'memory' || !ts.isCallExpression(call) || !ts.isPropertyAccessExpression(call.expression)) return false;
  const receiver = call.expression.expression;
  const named = ts.isPropertyAccessExpression(receiver) ? receiver.name : receiver;
  const decl = checker.getSymbolAtLocation(named)?.valueDeclaration;
  if (!decl || ((decl as ts.NamedDeclaration).name !== map && decl !== map.parent)) return false;
  const mapType = checker.getTypeAtLocation(receiver);
  const declaredValue = mapType.getSymbol()?.getName() === 'Map' ? checker.getTypeArguments(mapType as ts.TypeReference)[1] : undefined;
  if (declaredValue && notPlainData(declaredValue, checker) !== undefined) return false;
  const method = call.expression.name.text;
  if (method === 'delete') return true;
  const value = call.arguments[1];
  return method === 'set' && !!value && notPlainData(checker.getTypeAtLocation(value), checker) === undefined;
}

const handlersOf = (writes: ProcessStateWrite[]): string => [...new Set(writes.map((w) => `\`${w.registrar}\``))].slice(0, 3).join(', ');

function why(symbol: string, writes: ProcessStateWrite[], stdio: boolean): string {
  const what =
    writes[0]!.kind === 'file'
      ? `the file at \`${symbol}\` is on this replica's disk, and ${handlersOf(writes)} handler code writes it and reads it back`
      : `\`${symbol}\` is one value for the whole process, yet ${handlersOf(writes)} handler code writes it with what a session sent`;
  const scope = stdio
    ? 'For a stdio server the process is the session: behind `mcp-migrate proxy` each session gets its own child process on each replica, so a session\'s next request can reach a replica whose process never saw these writes. '
    : 'Every session of this process reads whichever session wrote last, and behind a round-robin load balancer each replica also holds its own copy, so a session reads a value another session (or nothing) wrote. ';
  return `${what}. ${scope}`;
}

function advice(fix: Fix, file: boolean): string {
  if (fix === SHARED_MAP) {
    return 'No handshake replay rebuilds it. It is a keyed `Map`: `mcp-migrate apply` moves it to a store-backed `SharedMap` every replica reads when every use is an awaited-able `get`/`set`/`has`/`delete` of plain data (otherwise it says why not); or key it by session id in `createSessionMap(name)`, or run `mcp-migrate proxy --affinity owner`.';
  }
  if (fix === 'proxy') {
    return 'It is only written while handling `initialize`, `logging/setLevel` or `resources/subscribe`, which `mcp-migrate proxy` replays on every replica, so the proxy rebuilds it.';
  }
  return file
    ? 'No handshake replay rebuilds it: keep it in a shared store (or on storage every replica mounts), or run `mcp-migrate proxy --affinity owner` so the replica that created the session keeps serving it.'
    : 'No handshake replay rebuilds it: key it by session id in a shared store (`@mcp-migrate/runtime` session maps), pass it in tool arguments, or run `mcp-migrate proxy --affinity owner`; the codemods cannot decide which, so this needs a manual change.';
}

/** The finding for an OAuth provider (or clients store) that keeps what the SDK's auth routes write in this process. */
function authMessage(a: AuthProviderState): string {
  const fields = a.fields.map((f) => `\`${f.field}\` (written by \`${f.method}\`)`).join(', ');
  return (
    `The OAuth ${a.option === 'provider' ? 'provider' : 'clients store'} given to the SDK's \`${a.router}\`, a \`${a.className}\`, keeps ${fields} in this process's memory; ` +
    "the SDK's auth routes (`/register`, `/authorize`, `/token`) write them on each request and the bearer check (`verifyAccessToken`, directly or through an introspection route) reads them. " +
    'A client registered, or a token issued, by one replica is unknown to the others: behind a round-robin load balancer its requests that reach another replica are refused (401 invalid token), whatever happens to the MCP session. ' +
    'No handshake replay rebuilds it: keep clients, codes and tokens in a store every replica reads (`mcp-migrate apply` moves `Map` fields used only through awaited `get`/`set`/`has`/`delete` of plain data to a store-backed `SharedMap`, and says why where it cannot), or run one authorization server for all replicas and verify tokens against it (`ProxyOAuthServerProvider`, or introspection of that one server).'
  );
}

/** The finding for a handle table (`src/analyzer/handle-tables.ts`). */
function tableMessage(t: HandleTable): string {
  const minter = t.minter.name && ts.isIdentifier(t.minter.name) ? `\`${t.minter.name.text}\`` : 'a function';
  return (
    `\`${t.name}\` keeps entries under ids this process mints and hands out (${minter} makes the id and returns it to its caller): whoever holds such an id names the entry in a later call, and only this process has it. ` +
    'Behind a round-robin load balancer that call reaches a replica that has never seen the id and answers as if it did not exist, whatever happens to the MCP session, and a restart loses every entry. ' +
    'Keep the entries (or what rebuilds them) in a store every replica reads, keyed by the id, or keep each caller on the replica that minted its ids and say so in the deployment; no codemod moves them.'
  );
}

function sweepMessage(t: HandleTable, call: ts.CallExpression): string {
  const api = ts.isIdentifier(call.expression) ? call.expression.text : 'timer';
  return (
    `This \`${api}\` expires the entries of \`${t.name}\`, which holds what callers reach by ids this process minted: each replica sweeps only its own copy. ` +
    'When the entries move to a shared store, expire them there (a TTL per entry) instead; no codemod rewrites a timer.'
  );
}

/**
 * Finds module-level, static or singleton state that request, tool, resource, prompt or notification
 * handlers write with what a session sent (see `src/analyzer/process-state.ts` for the data flow): one
 * value shared by every session of the process, or, for a stdio server, the session's own state that
 * lives and dies with its process.
 */
export default createRule({
  meta: {
    id: 'no-global-connection-state',
    category: 'global-connection-state',
    severity: 'warning',
    description: 'Module-level, static or singleton state written by request handlers, silently acting as connection state',
    fix: 'manual',
  },
  create: (ctx) => {
    const index = new ProcessStateIndex(ctx.flow, (node) => ctx.isAnalyzed(node.getSourceFile()) && !ctx.dependencyAt(node), ctx.dependencyAt);
    const tables = new HandleTableIndex(ctx.flow);
    const visit = (node: ts.Node): void => {
      index.visit(node);
      tables.visit(node);
    };
    const visitors: Record<number, (node: ts.Node) => void> = {};
    for (const kind of VISITED) visitors[kind] = visit;
    return {
      ...visitors,
      end() {
        const stdio = index.stdioOnly;
        // Containers keyed by session id are reported by the registry and keyed-state rules.
        const sessionKeyed = new Set(ctx.containers().map((c) => c.node));
        const groups = new Map<ts.Node, { symbol: string; writes: ProcessStateWrite[] }>();
        const add = (node: ts.Node, symbol: string, w: ProcessStateWrite): void => {
          const g = groups.get(node) ?? { symbol, writes: [] };
          g.writes.push(w);
          groups.set(node, g);
        };
        const writes = index.writes();
        // A file written with state already reported in memory (`writeFile(path, JSON.stringify(this.config))`)
        // is that state's on-disk copy: the in-memory finding names it.
        const inMemory = new Set(writes.filter((w) => w.kind === 'memory').flatMap((w) => (w.field ? [w.holder.node, w.field.node] : [w.holder.node])));
        const copiesMemoryState = (w: ProcessStateWrite): boolean =>
          ts.isCallExpression(w.node) &&
          w.node.arguments.slice(1).some((arg) => containsNode(arg, (n) => {
            const decl = (ts.isIdentifier(n) || ts.isPrivateIdentifier(n)) ? ctx.flow.symbolAt(n)?.valueDeclaration : undefined;
            const name = decl && (decl as ts.NamedDeclaration).name;
            return !!name && inMemory.has(name);
          }));
        for (const w of writes) {
          if (sessionKeyed.has(w.holder.node) || (w.field && sessionKeyed.has(w.field.node))) continue;
          if (w.kind === 'file' && copiesMemoryState(w)) continue;
          if (w.kind === 'file') {
            add(w.node, (w.field ?? w.holder).name, w);
            continue;
          }
          add(w.holder.node, w.holder.name, w);
          if (w.field) add(w.field.node, w.field.name, w);
        }
        for (const [node, { symbol, writes }] of groups) {
          const fix: Fix = stdio && writes.every((w) => w.replayed) ? 'proxy' : initializedToMap(node) && writes.every((w) => writesPlainData(node, w, ctx.checker)) ? SHARED_MAP : 'manual';
          ctx.report({ node, symbol, fix, message: why(symbol, writes, stdio) + advice(fix, writes[0]!.kind === 'file') });
        }
        // Entries reached by ids this process mints and hands out, whoever writes them (src/analyzer/handle-tables.ts).
        for (const t of tables.tables((n) => ctx.isAnalyzed(n.getSourceFile()) && !ctx.dependencyAt(n))) {
          if (sessionKeyed.has(t.node) || groups.has(t.node)) continue;
          ctx.report({ node: t.node, symbol: t.name, fix: 'manual', message: tableMessage(t) });
          for (const call of tableSweeps(ctx.flow, t)) ctx.report({ node: call, symbol: (call.expression as ts.Identifier).text, fix: 'manual', message: sweepMessage(t, call) });
        }
        // OAuth clients, codes and tokens an in-memory provider keeps for the SDK's auth routes (src/analyzer/auth-provider-state.ts).
        const analyzedFiles = ctx.flow.sourceFiles.filter((sf) => ctx.isAnalyzed(sf));
        for (const a of authProviderState(analyzedFiles, ctx.checker)) {
          ctx.report({ node: a.node, symbol: a.className, fix: SHARED_MAP, message: authMessage(a) });
        }
      },
    };
  },
});
