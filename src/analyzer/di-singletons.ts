/**
 * Singletons a dependency-injection container holds: the instance `container.resolve(X)` returns is one
 * object for the whole process when the container is told to keep it, so what request handlers write in
 * it is process state, like a module-level instance.
 *
 * Known containers, by the package their container object or decorator is imported from, or, in a
 * bundle, loaded from (esbuild's `__toESM(require_tsyringe())` of the package's bundled CommonJS module);
 * their own declarations need not be installed:
 * - tsyringe: `container.resolve(T)`; singleton when the class is decorated `@singleton()` or
 *   `@scoped(Lifecycle.ContainerScoped)`, or registered by `registerSingleton(T, C)`,
 *   `register(T, { useClass: C }, { lifecycle: Lifecycle.Singleton | ContainerScoped })`,
 *   `register(T, { useValue: new C() })` or `registerInstance(T, new C())`;
 * - inversify: `container.get(T)`; singleton when bound `bind(T).to(C).inSingletonScope()` /
 *   `toSelf().inSingletonScope()` or `toConstantValue(new C())`;
 * - typedi: `Container.get(T)`; `@Service()` classes are container singletons by default.
 * A class resolved without such a registration is built anew per resolution (tsyringe's `@injectable()`,
 * inversify's default transient scope) and is not a holder.
 */
import { ts } from 'ts-morph';
import { skipOuter } from './ast.js';

const DI_PACKAGE = /^(tsyringe|inversify|typedi)(\/|$)/;
const RESOLVERS = new Set(['resolve', 'get', 'getAsync']);
const SINGLETON_DECORATORS = new Set(['singleton', 'Service', 'scoped']);
/** Registration calls whose arguments name a token and what the container keeps for it. */
export const DI_REGISTRATIONS = ['register', 'registerSingleton', 'registerInstance', 'inSingletonScope', 'toConstantValue'] as const;

export interface DiSingletonDeps {
  symbolAt(node: ts.Node): ts.Symbol | undefined;
  /** Is the identifier imported from (or built from a class imported from) a module the predicate accepts? */
  importedFrom(id: ts.Identifier, accept: (specifier: string) => boolean): boolean;
  /** Calls of the analyzed program by callee name. */
  callsNamed(name: string): readonly ts.CallExpression[];
}

/** Does the file import a dependency-injection container package? */
export function importsDiPackage(file: ts.SourceFile): boolean {
  return file.statements.some((s) => ts.isImportDeclaration(s) && ts.isStringLiteral(s.moduleSpecifier) && DI_PACKAGE.test(s.moduleSpecifier.text));
}

export class DiSingletons {
  private readonly singletonMemo = new Map<ts.ClassLikeDeclaration, boolean>();

  constructor(private readonly deps: DiSingletonDeps) {}

  /** The class of the singleton a resolve call returns (`container.resolve(Store)`), if the container keeps one. */
  resolvedSingleton(call: ts.CallExpression): ts.ClassLikeDeclaration | undefined {
    const callee = skipOuter(call.expression);
    const token = call.arguments[0];
    if (!token || !ts.isPropertyAccessExpression(callee) || !RESOLVERS.has(callee.name.text)) return undefined;
    if (!this.isContainer(callee.expression)) return undefined;
    const direct = this.classOf(token);
    if (direct && this.isSingleton(direct)) return direct;
    return this.registeredSingleton(token);
  }

  #callsBundledContainer: boolean | undefined;

  /**
   * Does the program resolve from or register with a container it does not import (one loaded from a
   * bundled CommonJS module)? Computed once; {@link importsDiPackage} answers for imports.
   */
  callsBundledContainer(): boolean {
    this.#callsBundledContainer ??= ['resolve', ...DI_REGISTRATIONS].some((name) =>
      this.deps.callsNamed(name).some((call) => {
        const callee = skipOuter(call.expression);
        return ts.isPropertyAccessExpression(callee) && this.isContainer(callee.expression);
      }),
    );
    return this.#callsBundledContainer;
  }

  /** A class whose instances the container keeps one of (decorator or registration). */
  isSingleton(cls: ts.ClassLikeDeclaration): boolean {
    const memo = this.singletonMemo.get(cls);
    if (memo !== undefined) return memo;
    this.singletonMemo.set(cls, false);
    const decorated = (ts.getDecorators(cls) ?? []).some((d) => {
      const e = skipOuter(d.expression);
      const id = ts.isCallExpression(e) ? skipOuter(e.expression) : e;
      if (!ts.isIdentifier(id) || !SINGLETON_DECORATORS.has(id.text) || !this.deps.importedFrom(id, (s) => DI_PACKAGE.test(s))) return false;
      // `@scoped(Lifecycle.ResolutionScoped)` is one instance per resolution.
      return id.text !== 'scoped' || (ts.isCallExpression(e) && !!e.arguments[0] && /ContainerScoped/.test(e.arguments[0].getText()));
    });
    const result = decorated || (!!cls.name && this.registeredSingleton(cls.name) === cls) || this.keptUnderAnyToken().has(cls);
    this.singletonMemo.set(cls, result);
    return result;
  }

  #keptUnderAnyToken: Set<ts.ClassLikeDeclaration> | undefined;

  /**
   * Classes a singleton registration keeps under some token (`register(StorageToken, { useClass: Storage },
   * { lifecycle: Lifecycle.Singleton })`): an object of that class handed to code by injection is that one
   * instance. Computed once.
   */
  private keptUnderAnyToken(): Set<ts.ClassLikeDeclaration> {
    if (this.#keptUnderAnyToken) return this.#keptUnderAnyToken;
    const out = new Set<ts.ClassLikeDeclaration>();
    for (const name of DI_REGISTRATIONS) {
      for (const call of this.deps.callsNamed(name)) {
        const kept = this.keptClass(call, name, () => true);
        if (kept) out.add(kept);
      }
    }
    this.#keptUnderAnyToken = out;
    return out;
  }

  /** The class kept for `token` by a singleton registration anywhere in the program. */
  private registeredSingleton(token: ts.Expression): ts.ClassLikeDeclaration | undefined {
    const symbol = this.deps.symbolAt(skipOuter(token));
    if (!symbol) return undefined;
    const sameToken = (arg: ts.Expression | undefined): boolean => !!arg && this.deps.symbolAt(skipOuter(arg)) === symbol;
    for (const name of DI_REGISTRATIONS) {
      for (const call of this.deps.callsNamed(name)) {
        const kept = this.keptClass(call, name, sameToken);
        if (kept) return kept;
      }
    }
    return undefined;
  }

  private keptClass(call: ts.CallExpression, name: (typeof DI_REGISTRATIONS)[number], sameToken: (arg: ts.Expression | undefined) => boolean): ts.ClassLikeDeclaration | undefined {
    const [first, second, third] = call.arguments;
    const callee = skipOuter(call.expression);
    if (!ts.isPropertyAccessExpression(callee)) return undefined;
    if (name === 'inSingletonScope' || name === 'toConstantValue') {
      // inversify: `bind(T).to(C).inSingletonScope()`, `bind(T).toSelf().inSingletonScope()`, `bind(T).toConstantValue(v)`.
      const chain = bindingChain(callee.expression);
      if (!chain || !sameToken(chain.bind.arguments[0]) || !this.isContainer(chain.bind.expression)) return undefined;
      if (name === 'toConstantValue') return this.classOf(first);
      return chain.to ? this.classOf(chain.to.arguments[0]) : this.classOf(chain.bind.arguments[0]);
    }
    if (!this.isContainer(callee.expression)) return undefined;
    if (name === 'registerSingleton') return second ? (sameToken(first) ? this.classOf(second) : undefined) : sameToken(first) ? this.classOf(first) : undefined;
    if (!sameToken(first) || !second) return undefined;
    if (name === 'registerInstance') return this.classOf(second);
    const provider = skipOuter(second);
    if (!ts.isObjectLiteralExpression(provider)) return undefined;
    const value = propertyValue(provider, 'useValue');
    if (value) return this.classOf(value);
    const useClass = propertyValue(provider, 'useClass');
    const options = third && skipOuter(third);
    const lifecycle = options && ts.isObjectLiteralExpression(options) ? propertyValue(options, 'lifecycle') : undefined;
    return useClass && lifecycle && /\b(Singleton|ContainerScoped)$/.test(lifecycle.getText()) ? this.classOf(useClass) : undefined;
  }

  /** `container` (imported from a DI package, or `new Container()` of one), `container.createChildContainer()`. */
  private isContainer(expr: ts.Expression): boolean {
    let root = skipOuter(expr);
    while (ts.isPropertyAccessExpression(root) || ts.isCallExpression(root)) root = skipOuter(root.expression);
    return ts.isIdentifier(root) && this.deps.importedFrom(root, (s) => DI_PACKAGE.test(s));
  }

  /** The class an expression names or builds: `Store`, `new Store()`. */
  private classOf(expr: ts.Expression | undefined): ts.ClassLikeDeclaration | undefined {
    if (!expr) return undefined;
    const e = skipOuter(expr);
    const named = ts.isNewExpression(e) ? skipOuter(e.expression) : e;
    if (!ts.isIdentifier(named) && !ts.isPropertyAccessExpression(named)) return undefined;
    const symbol = this.deps.symbolAt(ts.isPropertyAccessExpression(named) ? named.name : named);
    return symbol?.declarations?.find(ts.isClassLike);
  }
}

function propertyValue(obj: ts.ObjectLiteralExpression, name: string): ts.Expression | undefined {
  for (const p of obj.properties) {
    if (ts.isPropertyAssignment(p) && p.name.getText() === name) return p.initializer;
    if (ts.isShorthandPropertyAssignment(p) && p.name.text === name) return p.name;
  }
  return undefined;
}

/** `container.bind(T)` and its `.to(C)` in `container.bind(T).to(C)` (the receiver of `.inSingletonScope()`). */
function bindingChain(expr: ts.Expression): { bind: ts.CallExpression; to?: ts.CallExpression } | undefined {
  let e = skipOuter(expr);
  let to: ts.CallExpression | undefined;
  while (ts.isCallExpression(e) && ts.isPropertyAccessExpression(e.expression)) {
    const name = e.expression.name.text;
    if (name === 'bind') return { bind: e, to };
    if (name === 'to') to = e;
    e = skipOuter(e.expression.expression);
  }
  return undefined;
}
