/**
 * Handlers that MCP server frameworks call once per request but that no registration call of the
 * MCP SDK's shape (`server.tool(name, …, fn)`) names: the framework finds them in an object it is
 * given, by a parameter type, or by file convention. Recognized from the framework's imports, types
 * and API shapes, never from the server's own names:
 *
 * | framework | handler |
 * |---|---|
 * | `fastmcp` | `execute` of the tool object given to `addTool`, `load` of the object given to `addResource`, `addResourceTemplate` or `addPrompt`, on a `FastMCP` (made with `new FastMCP`, or a parameter of that type); any function with a parameter typed fastmcp's `Context` (a tool's `execute(args, context)`), also when the type comes from the parameter of a helper the function is passed to (`createTool(…, async (args, context) => …)`) |
 * | `mcp-use` | `cb` of the definition given to `tool` or `prompt`, `readCallback` of the one given to `resource`, on an `MCPServer` of `mcp-use` |
 * | `xmcp` | the default export of a module in the tools, prompts or resources directory (`paths` of the nearest `xmcp.config.*`, default `src/tools`, `src/prompts`, `src/resources`; xmcp docs, "PathsConfig"), or of a module that imports from `xmcp` and exports the tool's `metadata` or `schema` |
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ts } from 'ts-morph';
import { calleeName, isFunctionLike, propertyNameText, skipOuter, type FunctionLike } from './ast.js';

export interface FrameworkHandler {
  framework: 'fastmcp' | 'mcp-use' | 'xmcp';
  /** What registers it, for the finding (`addTool`, `tool`, `default export`). */
  registrar: string;
}

/** Registration method → handler property, per framework. */
const OBJECT_HANDLERS: Record<'fastmcp' | 'mcp-use', Map<string, Set<string>>> = {
  fastmcp: new Map([['addTool', new Set(['execute'])], ['addResource', new Set(['load'])], ['addResourceTemplate', new Set(['load'])], ['addPrompt', new Set(['load'])]]),
  'mcp-use': new Map([['tool', new Set(['cb'])], ['prompt', new Set(['cb'])], ['resource', new Set(['readCallback'])]]),
};
const FRAMEWORK_CLASS = { fastmcp: 'FastMCP', 'mcp-use': 'MCPServer' } as const;
const XMCP_CONFIG = ['xmcp.config.ts', 'xmcp.config.js', 'xmcp.config.mjs', 'xmcp.config.cjs', 'xmcp.config.json'];
const XMCP_DEFAULT_DIRS = { tools: 'src/tools', prompts: 'src/prompts', resources: 'src/resources' };

/**
 * The framework handler `fn` is, if it is one (see the table above). `imported`: the packages the
 * program imports anywhere ({@link programImports}); the fastmcp and mcp-use checks, which resolve
 * symbols, run only in programs that use those frameworks.
 */
export function frameworkHandler(fn: FunctionLike, checker: ts.TypeChecker, imported: ReadonlySet<string>): FrameworkHandler | undefined {
  const objects = imported.has('fastmcp') || imported.has('mcp-use') ? objectHandler(fn, checker) : undefined;
  return objects ?? (imported.has('fastmcp') ? contextTyped(fn, checker) : undefined) ?? xmcpDefaultExport(fn);
}

/** Every package the files import from (`mcp-use` for `mcp-use/server`). */
export function programImports(files: readonly ts.SourceFile[]): Set<string> {
  const out = new Set<string>();
  for (const sf of files) for (const p of importedPackages(sf)) out.add(p);
  return out;
}

/** `server.addTool({ execute })`, `server.tool({ name, cb })`: the function is a handler property of the registered object. */
function objectHandler(fn: FunctionLike, checker: ts.TypeChecker): FrameworkHandler | undefined {
  const property = ts.isMethodDeclaration(fn) ? fn : ts.isPropertyAssignment(fn.parent) && fn.parent.initializer === fn ? fn.parent : undefined;
  const key = property && propertyNameText(property.name);
  if (!property || !key || !ts.isObjectLiteralExpression(property.parent)) return undefined;
  let arg: ts.Node = property.parent;
  while (ts.isParenthesizedExpression(arg.parent) || ts.isAsExpression(arg.parent) || ts.isSatisfiesExpression(arg.parent)) arg = arg.parent;
  const call = arg.parent;
  if (!ts.isCallExpression(call) || !call.arguments.includes(arg as ts.Expression) || !ts.isPropertyAccessExpression(call.expression)) return undefined;
  const method = call.expression.name.text;
  for (const framework of ['fastmcp', 'mcp-use'] as const) {
    if (!OBJECT_HANDLERS[framework].get(method)?.has(key)) continue;
    const receiver = skipOuter(call.expression.expression);
    if (ts.isIdentifier(receiver) && importedName(checker, receiver, 0)?.matches(framework, FRAMEWORK_CLASS[framework])) return { framework, registrar: method };
  }
  return undefined;
}

/** A function with a parameter typed fastmcp's `Context`, in its own annotations or in those of the helper parameter it is passed to. */
function contextTyped(fn: FunctionLike, checker: ts.TypeChecker): FrameworkHandler | undefined {
  if (importedPackages(fn.getSourceFile()).has('fastmcp') && fn.parameters.some((p) => isFastmcpContext(p.type, checker))) return { framework: 'fastmcp', registrar: 'execute' };
  const call = fn.parent;
  if (!ts.isCallExpression(call) || !call.arguments.includes(fn as ts.Expression) || !calleeImportsFastmcp(checker, call)) return undefined;
  const index = call.arguments.indexOf(fn as ts.Expression);
  const callee = skipOuter(call.expression);
  let symbol = checker.getSymbolAtLocation(ts.isPropertyAccessExpression(callee) ? callee.name : callee);
  if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
  for (const decl of symbol?.getDeclarations() ?? []) {
    const target = ts.isVariableDeclaration(decl) && decl.initializer ? skipOuter(decl.initializer) : decl;
    if (!isFunctionLike(target) && !ts.isFunctionDeclaration(target)) continue;
    const param = (target as FunctionLike).parameters[index];
    const type = param?.type;
    if (type && ts.isFunctionTypeNode(type) && type.parameters.some((p) => isFastmcpContext(p.type, checker))) return { framework: 'fastmcp', registrar: calleeName(call) ?? 'execute' };
  }
  return undefined;
}

function isFastmcpContext(type: ts.TypeNode | undefined, checker: ts.TypeChecker): boolean {
  if (!type || !ts.isTypeReferenceNode(type) || !ts.isIdentifier(type.typeName)) return false;
  return !!importedName(checker, type.typeName, 0)?.matches('fastmcp', 'Context');
}

/**
 * A helper call may receive a fastmcp handler only in a program that uses fastmcp: the helper's file
 * imports it. Checked on the callee's file, once per file.
 */
function calleeImportsFastmcp(checker: ts.TypeChecker, call: ts.CallExpression): boolean {
  const callee = skipOuter(call.expression);
  if (!ts.isIdentifier(callee)) return false;
  let symbol = checker.getSymbolAtLocation(callee);
  if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
  const sf = symbol?.getDeclarations()?.[0]?.getSourceFile();
  return !!sf && !sf.isDeclarationFile && importedPackages(sf).has('fastmcp');
}

const packagesMemo = new WeakMap<ts.SourceFile, Set<string>>();

/** The packages a file imports from (`fastmcp`, `mcp-use` for `mcp-use/server`, `@scope/name`). */
function importedPackages(sf: ts.SourceFile): Set<string> {
  let found = packagesMemo.get(sf);
  if (!found) {
    found = new Set();
    for (const s of sf.statements) {
      if (ts.isImportDeclaration(s) && ts.isStringLiteral(s.moduleSpecifier)) found.add(packageOf(s.moduleSpecifier.text));
    }
    packagesMemo.set(sf, found);
  }
  return found;
}

function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/**
 * What an identifier names, when it comes from an import: the package and the imported name, followed
 * through `const x = new X()` and a parameter's declared type (`server: FastMCP<Auth>`).
 */
function importedName(checker: ts.TypeChecker, id: ts.Identifier, depth: number): { matches(pkg: string, name: string): boolean } | undefined {
  if (depth > 3) return undefined;
  for (const decl of checker.getSymbolAtLocation(id)?.getDeclarations() ?? []) {
    if (ts.isImportSpecifier(decl)) {
      const module = (decl.parent.parent.parent.moduleSpecifier as ts.StringLiteral).text;
      const name = (decl.propertyName ?? decl.name).text;
      return { matches: (pkg, wanted) => packageOf(module) === pkg && name === wanted };
    }
    if (ts.isVariableDeclaration(decl) && decl.initializer) {
      const init = skipOuter(decl.initializer);
      const made = ts.isNewExpression(init) ? skipOuter(init.expression) : undefined;
      if (made && ts.isIdentifier(made)) return importedName(checker, made, depth + 1);
    }
    if ((ts.isParameter(decl) || ts.isVariableDeclaration(decl)) && decl.type && ts.isTypeReferenceNode(decl.type) && ts.isIdentifier(decl.type.typeName)) {
      return importedName(checker, decl.type.typeName, depth + 1);
    }
  }
  return undefined;
}

// ---------------------------------------------------------------- xmcp's file convention

/** `export default function tool(…)` / `export default async (…) => …` of an xmcp tool, prompt or resource module. */
function xmcpDefaultExport(fn: FunctionLike): FrameworkHandler | undefined {
  const sf = fn.getSourceFile();
  const isDefault =
    (ts.isFunctionDeclaration(fn) && !!ts.getModifiers(fn)?.some((m) => m.kind === ts.SyntaxKind.DefaultKeyword)) ||
    (ts.isExportAssignment(fn.parent) && !fn.parent.isExportEquals);
  if (!isDefault || sf.isDeclarationFile) return undefined;
  if (importedPackages(sf).has('xmcp') && exportsToolShape(sf)) return { framework: 'xmcp', registrar: 'default export' };
  return inXmcpDirectory(sf.fileName) ? { framework: 'xmcp', registrar: 'default export' } : undefined;
}

/** A module exporting `metadata` or `schema`: the shape of an xmcp tool module. */
function exportsToolShape(sf: ts.SourceFile): boolean {
  return sf.statements.some(
    (s) =>
      ts.isVariableStatement(s) &&
      !!ts.getModifiers(s)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword) &&
      s.declarationList.declarations.some((d) => ts.isIdentifier(d.name) && (d.name.text === 'metadata' || d.name.text === 'schema')),
  );
}

const configMemo = new Map<string, string[] | null>();

/** True when the file is inside the tools, prompts or resources directory of the nearest xmcp configuration. */
function inXmcpDirectory(fileName: string): boolean {
  for (let dir = path.dirname(fileName), i = 0; i < 8; dir = path.dirname(dir), i++) {
    const dirs = xmcpDirectories(dir);
    if (dirs) return dirs.some((d) => fileName.startsWith(d + path.sep) || fileName.startsWith(d + '/'));
    if (path.dirname(dir) === dir) break;
  }
  return false;
}

/** The handler directories an `xmcp.config.*` in `dir` declares (absolute), or null when there is none. */
function xmcpDirectories(dir: string): string[] | null {
  if (configMemo.has(dir)) return configMemo.get(dir)!;
  let found: string[] | null = null;
  const config = XMCP_CONFIG.map((f) => path.join(dir, f)).find((f) => existsSync(f));
  if (config) {
    const text = readFileSync(config, 'utf8');
    found = (Object.keys(XMCP_DEFAULT_DIRS) as Array<keyof typeof XMCP_DEFAULT_DIRS>).flatMap((kind) => {
      const value = configuredPath(text, kind);
      if (value === false) return [];
      return [path.join(dir, typeof value === 'string' ? value : XMCP_DEFAULT_DIRS[kind])];
    });
  }
  configMemo.set(dir, found);
  return found;
}

/** `paths: { tools: 'lib/tools' }` → 'lib/tools'; `tools: false` → false; absent or `true` → undefined (the default). */
function configuredPath(text: string, kind: string): string | false | undefined {
  const paths = /\bpaths\s*["']?\s*:\s*\{([^}]*)\}/.exec(text)?.[1];
  const entry = paths && new RegExp(`["']?\\b${kind}["']?\\s*:\\s*(false|true|"([^"]*)"|'([^']*)')`).exec(paths);
  if (!entry) return undefined;
  if (entry[1] === 'false') return false;
  return entry[2] ?? entry[3];
}
