/**
 * OAuth state held in process memory by an authorization server that the MCP SDK's auth router serves.
 *
 * The SDK's `mcpAuthRouter({ provider })` (and its single handlers `authorizationHandler`,
 * `tokenHandler`, `clientRegistrationHandler`, `revocationHandler`; SDK `server/auth/router` and
 * `server/auth/handlers/*`) serves `/register`, `/authorize`, `/token` and `/revoke`: each request calls
 * the provider's `clientsStore.registerClient`, `authorize`, `exchangeAuthorizationCode`,
 * `exchangeRefreshToken` or `revokeToken`, and a bearer check (`requireBearerAuth`, or an
 * introspection route) calls its `verifyAccessToken`. A provider whose class (or whose `clientsStore`)
 * keeps collections that those methods write (`this.tokens.set(token, …)`) holds the clients, codes and
 * tokens of one process: a token issued by one replica is unknown to the others.
 *
 * Recognized from where the object is passed (an SDK auth router's `provider` / `clientsStore`) and from
 * what its class does with its fields, never from the class's name. A provider that keeps nothing in
 * memory (the SDK's `ProxyOAuthServerProvider`, a store client) is not reported.
 */
import { ts } from 'ts-morph';
import { calleeName, skipOuter, classNameOf } from './ast.js';
import { isSdkFile } from './sdk-types.js';

/** The SDK's auth router factories and single handlers, whose options carry a `provider` or a `clientsStore`. */
const AUTH_ROUTERS = new Set(['mcpAuthRouter', 'authorizationHandler', 'tokenHandler', 'clientRegistrationHandler', 'revocationHandler']);
const OPTION_KEYS = new Set(['provider', 'clientsStore']);
const COLLECTION = /^new (Map|Set|WeakMap|Array)\b|^\[\]$|^\{\}$/;
const WRITES = new Set(['set', 'add', 'push', 'unshift', 'splice']);

export interface AuthProviderState {
  /** The `provider` / `clientsStore` value passed to the router (where the finding goes). */
  node: ts.Node;
  /** The option it is passed as. */
  option: 'provider' | 'clientsStore';
  /** The provider's class name. */
  className: string;
  /** Fields written by the class's methods, with the method writing each (`tokens` by `exchangeAuthorizationCode`); nested stores as `clientsStore.clients`. */
  fields: Array<{ field: string; method: string }>;
  /** The SDK function it is passed to. */
  router: string;
}

/** Every provider (or clients store) passed to an SDK auth router in `files` whose class keeps what its methods write in memory. */
export function authProviderState(files: readonly ts.SourceFile[], checker: ts.TypeChecker): AuthProviderState[] {
  const out: AuthProviderState[] = [];
  let names: ReadonlySet<string> = AUTH_ROUTERS;
  const visit = (n: ts.Node): void => {
    if (ts.isCallExpression(n) && names.has(calleeName(n) ?? '')) {
      const router = sdkAuthRouter(n, checker);
      const options = router ? n.arguments[0] && skipOuter(n.arguments[0]) : undefined;
      if (router && options && ts.isObjectLiteralExpression(options)) {
        for (const p of options.properties) {
          if (!(ts.isPropertyAssignment(p) || ts.isShorthandPropertyAssignment(p)) || !ts.isIdentifier(p.name) || !OPTION_KEYS.has(p.name.text)) continue;
          const cls = classOfValue(ts.isPropertyAssignment(p) ? p.initializer : p.name, checker);
          const fields = cls ? writtenCollections(cls, checker, 0) : [];
          if (cls && fields.length) out.push({ node: p, option: p.name.text as AuthProviderState['option'], className: classNameOf(cls), fields, router });
        }
      }
    }
    ts.forEachChild(n, visit);
  };
  for (const sf of files) {
    names = routerNamesIn(sf, checker);
    visit(sf);
  }
  return out;
}

/**
 * The names a call in `sf` can reach an SDK auth router by: the routers' own names (a namespace or
 * `require` member, a bundled copy) and the local names of imports of them under another name
 * (`import { mcpAuthRouter as authRouter }`, resolved through the import). Only calls by these names are
 * resolved with the checker, which is what keeps this pass cheap on large trees.
 */
function routerNamesIn(sf: ts.SourceFile, checker: ts.TypeChecker): ReadonlySet<string> {
  const names = new Set(AUTH_ROUTERS);
  for (const st of sf.statements) {
    const bindings = ts.isImportDeclaration(st) ? st.importClause?.namedBindings : undefined;
    if (!bindings || !ts.isNamedImports(bindings)) continue;
    for (const spec of bindings.elements) {
      if (!spec.propertyName) continue;
      const symbol = checker.getSymbolAtLocation(spec.name);
      const target = symbol && symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
      if (target && AUTH_ROUTERS.has(target.getName())) names.add(spec.name.text);
    }
  }
  return names;
}

/** The SDK auth router `call` invokes (resolved through imports to a declaration in an SDK file), by its exported name. */
function sdkAuthRouter(call: ts.CallExpression, checker: ts.TypeChecker): string | undefined {
  const callee = skipOuter(call.expression);
  const id = ts.isPropertyAccessExpression(callee) ? callee.name : callee;
  if (!ts.isIdentifier(id)) return undefined;
  let symbol = checker.getSymbolAtLocation(id);
  if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
  const name = symbol?.getName();
  if (!name || !AUTH_ROUTERS.has(name)) return undefined;
  return symbol!.declarations?.some((d) => isSdkFile(d.getSourceFile().fileName)) ? name : undefined;
}

/** The class of `new C(…)`, directly or through the variable it initializes. */
function classOfValue(expr: ts.Expression, checker: ts.TypeChecker): ts.ClassLikeDeclaration | undefined {
  let value: ts.Expression = skipOuter(expr);
  if (ts.isIdentifier(value)) {
    const symbol = checker.getSymbolAtLocation(value);
    const decl = symbol && (ts.isShorthandPropertyAssignment(value.parent) ? checker.getShorthandAssignmentValueSymbol(value.parent) : symbol)?.valueDeclaration;
    if (!decl || !ts.isVariableDeclaration(decl) || !decl.initializer) return undefined;
    value = skipOuter(decl.initializer);
  }
  if (!ts.isNewExpression(value)) return undefined;
  let symbol = checker.getSymbolAtLocation(skipOuter(value.expression));
  if (symbol && symbol.flags & ts.SymbolFlags.Alias) symbol = checker.getAliasedSymbol(symbol);
  return symbol?.declarations?.find((d): d is ts.ClassLikeDeclaration => ts.isClassDeclaration(d) || ts.isClassExpression(d));
}

/**
 * Fields of `cls` initialized to a collection (`this.tokens = new Map()`, `tokens = new Map()`) that one of
 * its methods writes (`this.tokens.set(…)`), and those of classes it holds in a field (`this.clientsStore =
 * new ClientsStore()`), prefixed with that field.
 */
function writtenCollections(cls: ts.ClassLikeDeclaration, checker: ts.TypeChecker, depth: number): Array<{ field: string; method: string }> {
  const collections = new Set<string>();
  const held = new Map<string, ts.ClassLikeDeclaration>();
  const init = (name: string, value: ts.Expression): void => {
    const v = skipOuter(value);
    if (COLLECTION.test(v.getText())) collections.add(name);
    else if (ts.isNewExpression(v) && depth < 2) {
      const inner = classOfValue(v, checker);
      if (inner) held.set(name, inner);
    }
  };
  for (const m of cls.members) {
    if (ts.isPropertyDeclaration(m) && m.initializer && ts.isIdentifier(m.name)) init(m.name.text, m.initializer);
    if (ts.isConstructorDeclaration(m) && m.body) {
      for (const s of m.body.statements) {
        const e = ts.isExpressionStatement(s) ? s.expression : undefined;
        if (e && ts.isBinaryExpression(e) && e.operatorToken.kind === ts.SyntaxKind.EqualsToken && ts.isPropertyAccessExpression(e.left) && e.left.expression.kind === ts.SyntaxKind.ThisKeyword) {
          init(e.left.name.text, e.right);
        }
      }
    }
  }
  const out: Array<{ field: string; method: string }> = [];
  for (const m of cls.members) {
    if (!ts.isMethodDeclaration(m) || !m.body || !ts.isIdentifier(m.name)) continue;
    const method = m.name.text;
    const visit = (n: ts.Node): void => {
      if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression) && WRITES.has(n.expression.name.text)) {
        const target = skipOuter(n.expression.expression);
        if (ts.isPropertyAccessExpression(target) && target.expression.kind === ts.SyntaxKind.ThisKeyword && collections.has(target.name.text) && !out.some((o) => o.field === target.name.text)) {
          out.push({ field: target.name.text, method });
        }
      }
      ts.forEachChild(n, visit);
    };
    visit(m.body);
  }
  for (const [name, inner] of held) for (const f of writtenCollections(inner, checker, depth + 1)) out.push({ field: `${name}.${f.field}`, method: f.method });
  return out;
}
