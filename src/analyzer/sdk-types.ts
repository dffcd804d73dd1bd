/**
 * Which types are the MCP SDK's session-bound objects: sessionful server transports, server instances,
 * and the experimental task stores and message queues (SDK v1 `@modelcontextprotocol/sdk`, v2
 * `@modelcontextprotocol/server` and `@modelcontextprotocol/node`).
 *
 * A type is recognised by where it is declared, never by its spelling in user code: a class or
 * interface declared in an `@modelcontextprotocol/*` package, reached through the checker (type
 * aliases, interfaces and classes that extend or implement it, unions, generic arguments) or, when the
 * SDK is not installed (a checkout without `node_modules`), through the import that names it
 * (`import { StreamableHTTPServerTransport as T } from '@modelcontextprotocol/sdk/server/streamableHttp.js'`).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ts } from 'ts-morph';
import { skipOuter } from './ast.js';

/** SDK classes whose instance belongs to one session (Streamable HTTP, web-standard and legacy SSE). */
const SESSION_TRANSPORTS = new Set([
  'StreamableHTTPServerTransport',
  'WebStandardStreamableHTTPServerTransport',
  'NodeStreamableHTTPServerTransport',
  'SSEServerTransport',
]);
/** SDK server classes (v1 `McpServer` and low-level `Server`; v2 the same names). */
const SERVERS = new Set(['McpServer', 'Server']);
/** The SDK's transport interface: any value of it is a transport. */
const TRANSPORT_INTERFACES = new Set(['Transport']);
/** SDK task-store interfaces (experimental tasks, SDK 1.2x+) and their in-memory implementations. */
export const TASK_STORE_INTERFACES = new Set(['TaskStore', 'TaskMessageQueue']);
export const IN_MEMORY_TASK_CLASSES = new Set(['InMemoryTaskStore', 'InMemoryTaskMessageQueue']);

const SDK_FILE = /[\\/]node_modules[\\/]@modelcontextprotocol[\\/]/;
const SDK_MODULE = /^@modelcontextprotocol\//;
const packageNames = new Map<string, string | null>();

/** The `name` of the nearest `package.json` above a directory (cached), `null` when there is none. */
export function packageNameOf(dir: string): string | null {
  const cached = packageNames.get(dir);
  if (cached !== undefined) return cached;
  let name: string | null = null;
  try {
    const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown };
    name = typeof pkg.name === 'string' ? pkg.name : null;
  } catch {
    const parent = path.dirname(dir);
    name = parent !== dir ? packageNameOf(parent) : null;
  }
  packageNames.set(dir, name);
  return name;
}

/**
 * A file of the MCP SDK: under `node_modules/@modelcontextprotocol/`, or in a package named
 * `@modelcontextprotocol/*` (the SDK's own repository, a workspace that vendors it).
 */
export function isSdkFile(fileName: string): boolean {
  if (SDK_FILE.test(fileName)) return true;
  const name = packageNameOf(path.dirname(fileName));
  return name !== null && SDK_MODULE.test(name);
}

export type SdkKind = 'session-transport' | 'server' | 'transport' | 'task-store';

function kindOfName(name: string): SdkKind | undefined {
  if (SESSION_TRANSPORTS.has(name)) return 'session-transport';
  if (SERVERS.has(name)) return 'server';
  if (TRANSPORT_INTERFACES.has(name)) return 'transport';
  if (TASK_STORE_INTERFACES.has(name) || IN_MEMORY_TASK_CLASSES.has(name)) return 'task-store';
  return undefined;
}

/** The SDK name an import binding stands for, when the binding is imported from an SDK package. */
function importedSdkName(decl: ts.Declaration): string | undefined {
  let spec: ts.Node | undefined = decl;
  if (ts.isImportSpecifier(decl)) spec = decl.parent.parent.parent;
  else if (ts.isImportClause(decl)) spec = decl.parent;
  else if (ts.isExportSpecifier(decl)) spec = decl.parent.parent; // a re-export: `export { X } from '@modelcontextprotocol/…'`
  else return undefined;
  if ((!ts.isImportDeclaration(spec) && !ts.isExportDeclaration(spec)) || !spec.moduleSpecifier || !ts.isStringLiteral(spec.moduleSpecifier) || !SDK_MODULE.test(spec.moduleSpecifier.text)) return undefined;
  return ts.isImportSpecifier(decl) || ts.isExportSpecifier(decl) ? (decl.propertyName ?? decl.name).text : undefined;
}

export class SdkTypes {
  private readonly symbolNames = new Map<ts.Symbol, string | null>();

  constructor(private readonly checker: ts.TypeChecker) {}

  /** The class is declared by the SDK itself (not a project class deriving from an SDK class). */
  isSdkDeclaration(cls: ts.ClassLikeDeclaration): boolean {
    return !!cls.name && kindOfName(cls.name.text) !== undefined && isSdkFile(cls.getSourceFile().fileName);
  }

  /** The SDK kind of a class, interface or alias symbol, following extends/implements. */
  kindOfSymbol(symbol: ts.Symbol | undefined, depth = 0): SdkKind | undefined {
    const name = this.sdkNameOf(symbol, depth);
    return name ? kindOfName(name) : undefined;
  }

  /**
   * The SDK class or interface a symbol is or derives from (`InMemoryTaskStore` for
   * `class MyStore extends InMemoryTaskStore`), through imports, aliases and heritage (cached).
   */
  sdkNameOf(symbol: ts.Symbol | undefined, depth = 0): string | undefined {
    if (!symbol || depth > 5) return undefined;
    const cached = this.symbolNames.get(symbol);
    if (cached !== undefined) return cached ?? undefined;
    this.symbolNames.set(symbol, null);
    const name = this.computeName(symbol, depth);
    this.symbolNames.set(symbol, name ?? null);
    return name;
  }

  private computeName(symbol: ts.Symbol, depth: number): string | undefined {
    for (const decl of symbol.declarations ?? []) {
      const imported = importedSdkName(decl);
      if (imported) return kindOfName(imported) ? imported : undefined;
      if (ts.isImportSpecifier(decl) || ts.isImportClause(decl)) {
        // Resolve the alias (a re-export chain ending in the SDK, or a project module).
        try {
          const target = this.checker.getAliasedSymbol(symbol);
          // Unresolved (the SDK not installed): one hop, to a project module's re-export of the SDK's name.
          const next = target.declarations?.length ? target : this.checker.getImmediateAliasedSymbol(symbol);
          if (next && next !== symbol) return this.sdkNameOf(next, depth + 1);
        } catch {
          /* unresolved */
        }
        continue;
      }
      if (kindOfName(symbol.getName()) && isSdkFile(decl.getSourceFile().fileName)) return symbol.getName();
      if (ts.isClassLike(decl) || ts.isInterfaceDeclaration(decl)) {
        for (const clause of decl.heritageClauses ?? []) {
          for (const t of clause.types) {
            const n = this.sdkNameOfExpression(t.expression, depth);
            if (n) return n;
          }
        }
      } else if (ts.isTypeAliasDeclaration(decl)) {
        // `type SessionTransport = StreamableHTTPServerTransport | SSEServerTransport`
        const parts = ts.isUnionTypeNode(decl.type) || ts.isIntersectionTypeNode(decl.type) ? decl.type.types : [decl.type];
        for (const part of parts) {
          const n = ts.isTypeReferenceNode(part) ? this.sdkNameOfEntity(part.typeName, depth + 1) : undefined;
          if (n) return n;
        }
      }
    }
    return undefined;
  }

  private sdkNameOfEntity(name: ts.EntityName, depth: number): string | undefined {
    let symbol: ts.Symbol | undefined;
    try {
      symbol = this.checker.getSymbolAtLocation(ts.isIdentifier(name) ? name : name.right);
    } catch {
      symbol = undefined;
    }
    return this.sdkNameOf(symbol, depth + 1);
  }

  /** The SDK class an expression names (`new X()`'s `X`, a heritage clause). */
  sdkNameOfExpression(expr: ts.Expression, depth = 0): string | undefined {
    const e = skipOuter(expr);
    const node = ts.isPropertyAccessExpression(e) ? e.name : e;
    let symbol: ts.Symbol | undefined;
    try {
      symbol = this.checker.getSymbolAtLocation(node);
    } catch {
      symbol = undefined;
    }
    return this.sdkNameOf(symbol, depth + 1);
  }

  private kindOfExpressionSymbol(expr: ts.Expression, depth: number): SdkKind | undefined {
    const name = this.sdkNameOfExpression(expr, depth);
    return name ? kindOfName(name) : undefined;
  }

  /** The SDK kind a type node names directly (`T`, `T | undefined`, `Promise<T>` excluded), through imports and aliases. */
  kindOfTypeNode(node: ts.TypeNode | undefined, depth = 0): SdkKind | undefined {
    if (!node || depth > 5) return undefined;
    if (ts.isUnionTypeNode(node) || ts.isIntersectionTypeNode(node)) {
      for (const t of node.types) {
        const k = this.kindOfTypeNode(t, depth + 1);
        if (k) return k;
      }
      return undefined;
    }
    if (ts.isParenthesizedTypeNode(node)) return this.kindOfTypeNode(node.type, depth + 1);
    if (ts.isTypeReferenceNode(node)) {
      const name = ts.isIdentifier(node.typeName) ? node.typeName : node.typeName.right;
      let symbol: ts.Symbol | undefined;
      try {
        symbol = this.checker.getSymbolAtLocation(name);
      } catch {
        symbol = undefined;
      }
      const k = this.kindOfSymbol(symbol, depth + 1);
      if (k) return k;
    }
    if (ts.isExpressionWithTypeArguments(node)) return this.kindOfExpressionSymbol(node.expression, depth);
    return undefined;
  }

  /** The SDK kind of a type from the checker (unions: any member). */
  kindOfType(type: ts.Type, depth = 0): SdkKind | undefined {
    if (depth > 5) return undefined;
    if (type.isUnionOrIntersection()) {
      for (const t of type.types) {
        const k = this.kindOfType(t, depth + 1);
        if (k) return k;
      }
      return undefined;
    }
    if (type.flags & ts.TypeFlags.TypeParameter) {
      const constraint = this.checker.getBaseConstraintOfType(type);
      return constraint && constraint !== type ? this.kindOfType(constraint, depth + 1) : undefined;
    }
    return this.kindOfSymbol(type.aliasSymbol, depth + 1) ?? this.kindOfSymbol(type.getSymbol(), depth + 1);
  }

  /** The SDK kind of the value an expression evaluates to: `new X()` by its class, else its type. */
  kindOfValue(expr: ts.Expression): SdkKind | undefined {
    const e = skipOuter(expr);
    if (ts.isNewExpression(e)) {
      const k = this.kindOfExpressionSymbol(e.expression, 0);
      if (k) return k;
    }
    try {
      return this.kindOfType(this.checker.getTypeAtLocation(e));
    } catch {
      return undefined;
    }
  }
}

/** A registry holds these: a sessionful transport, a server instance, or anything typed as the SDK `Transport`. */
export function isRegistryValueKind(kind: SdkKind | undefined): boolean {
  return kind === 'session-transport' || kind === 'server' || kind === 'transport';
}
