/**
 * Where a session registry lives and how the code reaches it, from the finding's node (whatever rule
 * reported it): a variable (module level or a closure's), a class field (`this.sessions`), a property
 * of an object literal held by a variable (`state.transports`), and the parameters of functions in the
 * same file it is passed to (`mountMcp(app, transports)`), also as a property of an object argument
 * that the function destructures (`handle({ sessions, req, res })` → `({ sessions, req, res }) => …`).
 * {@link registryFromGenerator} finds the registry from the transport it feeds where no finding names
 * the registry itself (bundled code that reaches it only through such parameters).
 *
 * A *site* is an expression that evaluates to the registry: the variable or parameter identifier, or
 * the `this.sessions` / `state.transports` property access.
 */
import { Node, SyntaxKind, type BindingElement, type Expression, type Identifier, type ParameterDeclaration, type SourceFile, type TypeNode } from 'ts-morph';

export interface RegistryTarget {
  kind: 'variable' | 'field' | 'property';
  /** The name in messages (`sessions`, `this.sessions`, `state.transports`). */
  name: string;
  /** The initializer to replace. */
  init: Expression;
  /** Declared types to replace: the declaration's and those of the parameters it is passed to. */
  typeNodes: TypeNode[];
  /** Every site in the file (through parameters too). */
  sites: Expression[];
  /** The class whose field it is (`kind: 'field'`). */
  classNode?: Node;
  /** Parameters it is passed to (or whose destructured property it is). */
  aliases: ParameterDeclaration[];
  /** Sites that only pass the registry on to a followed parameter (left as they are). */
  passed: Set<Expression>;
}

/** Locates the registry declared at `node` (the finding's node or its parent); a string says why not. */
export function locateRegistry(node: Node): RegistryTarget | string {
  const decl = Node.isIdentifier(node) || Node.isPrivateIdentifier(node) || Node.isStringLiteral(node) ? node.getParent() : node;
  if (!decl) return 'the registry is not a declaration apply can follow';
  const sf = decl.getSourceFile();
  let target: Omit<RegistryTarget, 'sites' | 'aliases' | 'typeNodes' | 'passed'> & { nameNode: Node; typeNode?: TypeNode };
  if (Node.isVariableDeclaration(decl) && Node.isIdentifier(decl.getNameNode()) && decl.getInitializer()) {
    target = { kind: 'variable', name: decl.getName(), init: decl.getInitializerOrThrow(), nameNode: decl.getNameNode(), typeNode: decl.getTypeNode() };
  } else if (Node.isPropertyDeclaration(decl) && !decl.isStatic() && Node.isIdentifier(decl.getNameNode()) && decl.getInitializer()) {
    target = { kind: 'field', name: `this.${decl.getName()}`, init: decl.getInitializerOrThrow(), nameNode: decl.getNameNode(), typeNode: decl.getTypeNode(), classNode: decl.getParent() };
  } else if (Node.isPropertyAssignment(decl) && Node.isIdentifier(decl.getNameNode())) {
    const holder = decl.getParent().getParent();
    if (!holder || !Node.isVariableDeclaration(holder) || !Node.isIdentifier(holder.getNameNode())) {
      return 'the registry is a property of an object literal that is not held by a variable: replace it by hand with `new SessionTransportRegistry()` (docs/apply.md)';
    }
    target = { kind: 'property', name: `${holder.getName()}.${decl.getName()}`, init: decl.getInitializerOrThrow(), nameNode: decl.getNameNode() };
  } else {
    return 'a registry declared this way (a parameter, a static field, a computed or destructured name) is not one apply can follow: replace it by hand with `new SessionTransportRegistry()` from @mcp-migrate/runtime (docs/apply.md)';
  }
  const refs = (target.nameNode as Identifier).findReferencesAsNodes();
  if (refs.some((r) => r.getSourceFile() !== sf)) {
    return 'the registry is used from other files: replace it by hand with `new SessionTransportRegistry()` and call `prepareNode` in each handler (docs/apply.md)';
  }
  const sites: Expression[] = [];
  for (const r of refs) {
    if (r === target.nameNode) continue;
    const site = siteOf(r, target.kind);
    if (!site) return `\`${target.name}\` is used in a way apply cannot follow (${r.getParentOrThrow().getText().slice(0, 60)})`;
    sites.push(site);
  }
  const aliases: ParameterDeclaration[] = [];
  const passed = new Set<Expression>();
  const aliasTypes: TypeNode[] = [];
  followParameters(sf, sites, { aliases, passed, types: aliasTypes }, 0);
  const typeNodes = [target.typeNode, ...aliasTypes].filter((t): t is TypeNode => !!t);
  return { kind: target.kind, name: target.name, init: target.init, classNode: target.classNode, typeNodes, sites, aliases, passed };
}

/** The expression a reference stands for: the identifier, or `this.x` / `holder.x`. */
function siteOf(ref: Node, kind: RegistryTarget['kind']): Expression | undefined {
  if (kind === 'variable') return Node.isIdentifier(ref) ? ref : undefined;
  const access = ref.getParent();
  if (!access || !Node.isPropertyAccessExpression(access) || access.getNameNode() !== ref) return undefined;
  if (kind === 'field' && access.getExpression().getKind() !== SyntaxKind.ThisKeyword) return undefined;
  return access;
}

type Followed = { aliases: ParameterDeclaration[]; passed: Set<Expression>; types: TypeNode[] };

/**
 * Sites passed as an argument to a function of this file, directly or as the value of a property of an
 * object literal argument the function destructures: that parameter's (or binding's) references are
 * sites too, and the passing site is recorded in `passed`.
 */
function followParameters(sf: SourceFile, sites: Expression[], out: Followed, depth: number): void {
  if (depth > 2) return;
  for (const site of [...sites]) {
    const passedTo = parameterReached(sf, site);
    if (!passedTo) continue;
    const { param, name, typeNode } = passedTo;
    if (out.aliases.includes(param) && !Node.isObjectBindingPattern(param.getNameNode())) continue;
    if (sites.some((s) => s === name)) continue;
    out.passed.add(site);
    if (!out.aliases.includes(param)) out.aliases.push(param);
    if (typeNode) out.types.push(typeNode);
    // The binding's own references (not the interface member it reads, nor other literals' properties of that name).
    const own = name.getSymbol();
    const more = name.findReferencesAsNodes().filter((r) => r !== name && Node.isIdentifier(r) && r.getSourceFile() === sf && r.getSymbol() === own) as Identifier[];
    sites.push(...more);
    followParameters(sf, more, out, depth + 1);
  }
}

/** The parameter (and the identifier naming the registry in it) that receives `site` in a call of a function of this file. */
function parameterReached(sf: SourceFile, site: Expression): { param: ParameterDeclaration; name: Identifier; typeNode?: TypeNode } | undefined {
  let arg: Node = site;
  let property: string | undefined;
  const holder = site.getParent();
  if (holder && (Node.isPropertyAssignment(holder) || Node.isShorthandPropertyAssignment(holder)) && (Node.isShorthandPropertyAssignment(holder) || holder.getInitializer() === site)) {
    const literal = holder.getParent();
    if (!literal || !Node.isObjectLiteralExpression(literal)) return undefined;
    property = holder.getName();
    arg = literal;
  }
  const call = arg.getParent();
  if (!call || !Node.isCallExpression(call) || !call.getArguments().includes(arg)) return undefined;
  const fn = calledFunction(call);
  if (!fn || fn.getSourceFile() !== sf) return undefined;
  const param = fn.getParameters()[call.getArguments().indexOf(arg)];
  if (!param) return undefined;
  const nameNode = param.getNameNode();
  if (property === undefined) return Node.isIdentifier(nameNode) ? { param, name: nameNode, typeNode: param.getTypeNode() } : undefined;
  if (!Node.isObjectBindingPattern(nameNode)) return undefined;
  const element = nameNode.getElements().find((e: BindingElement) => (e.getPropertyNameNode()?.getText() ?? e.getName()) === property);
  if (!element || !Node.isIdentifier(element.getNameNode()) || element.getInitializer()) return undefined;
  const typeNode = memberType(param.getTypeNode(), property, sf);
  return { param, name: element.getNameNode() as Identifier, typeNode };
}

/** The declared type of member `property` of a parameter's type: a type literal, or an interface or type alias of this file. */
function memberType(declared: TypeNode | undefined, property: string, sf: SourceFile): TypeNode | undefined {
  if (!declared) return undefined;
  if (Node.isTypeLiteral(declared)) return declared.getProperty(property)?.getTypeNode();
  if (!Node.isTypeReference(declared)) return undefined;
  const d = declared.getTypeName().getSymbol()?.getDeclarations()[0];
  if (!d || d.getSourceFile() !== sf) return undefined;
  if (Node.isInterfaceDeclaration(d)) return d.getProperty(property)?.getTypeNode();
  if (Node.isTypeAliasDeclaration(d)) return memberType(d.getTypeNode(), property, sf);
  return undefined;
}

/** The function a call calls, where its callee is the name of a function declaration or of a variable holding a function. */
function calledFunction(call: import('ts-morph').CallExpression) {
  const callee = call.getExpression();
  const decl = Node.isIdentifier(callee) ? callee.getSymbol()?.getDeclarations()[0] : undefined;
  const fn = decl && Node.isVariableDeclaration(decl) ? decl.getInitializer() : decl;
  return fn && (Node.isFunctionDeclaration(fn) || Node.isArrowFunction(fn) || Node.isFunctionExpression(fn)) ? fn : undefined;
}

/**
 * The declaration of the registry a sessionful transport is stored into, from the transport's
 * `sessionIdGenerator` property (the finding's node): the `onsessioninitialized` callback of the same
 * options stores into `<x>[id] = …` or `<x>.set(id, …)`; `<x>` is a variable of this file, or a
 * parameter (or a property destructured from one) that every call of its function in this file fills
 * with the same variable. `undefined` when no such single variable exists.
 */
export function registryFromGenerator(generator: Node): Node | undefined {
  const options = generator.getParent();
  if (!options || !Node.isObjectLiteralExpression(options)) return undefined;
  const callback = options.getProperty('onsessioninitialized');
  if (!callback) return undefined;
  const stored = new Set<Node>();
  for (const n of callback.getDescendants()) {
    let target: Node | undefined;
    if (Node.isBinaryExpression(n) && n.getOperatorToken().getKind() === SyntaxKind.EqualsToken && Node.isElementAccessExpression(n.getLeft())) target = (n.getLeft() as import('ts-morph').ElementAccessExpression).getExpression();
    else if (Node.isCallExpression(n) && Node.isPropertyAccessExpression(n.getExpression()) && (n.getExpression() as import('ts-morph').PropertyAccessExpression).getName() === 'set' && n.getArguments().length === 2) {
      target = (n.getExpression() as import('ts-morph').PropertyAccessExpression).getExpression();
    }
    if (target && Node.isIdentifier(target)) {
      const d = declarationBehind(target, 0);
      if (!d) return undefined;
      stored.add(d);
    }
  }
  return stored.size === 1 ? [...stored][0] : undefined;
}

/** A variable declaration an identifier stands for, following parameters back to the arguments of every call in the file. */
function declarationBehind(id: Identifier | import('ts-morph').ShorthandPropertyAssignment, depth: number): Node | undefined {
  const d = (Node.isShorthandPropertyAssignment(id) ? id.getValueSymbol() : id.getSymbol())?.getDeclarations()[0];
  if (!d || d.getSourceFile() !== id.getSourceFile() || depth > 2) return undefined;
  if (Node.isVariableDeclaration(d)) return d;
  const param = Node.isParameterDeclaration(d) ? d : Node.isBindingElement(d) ? d.getFirstAncestorByKind(SyntaxKind.Parameter) : undefined;
  const fn = param?.getParent();
  if (!param || !fn || !(Node.isFunctionDeclaration(fn) || Node.isArrowFunction(fn) || Node.isFunctionExpression(fn))) return undefined;
  const index = fn.getParameters().indexOf(param);
  const property = Node.isBindingElement(d) ? (d.getPropertyNameNode()?.getText() ?? d.getName()) : undefined;
  if (property !== undefined && d.getParent() !== param.getNameNode()) return undefined;
  const nameOfFn = Node.isFunctionDeclaration(fn) ? fn.getNameNode() : fn.getParentIfKind(SyntaxKind.VariableDeclaration)?.getNameNode();
  if (!nameOfFn || !Node.isIdentifier(nameOfFn)) return undefined;
  const found = new Set<Node>();
  for (const ref of nameOfFn.findReferencesAsNodes()) {
    const call = ref.getParent();
    if (ref === nameOfFn || !call || !Node.isCallExpression(call) || call.getExpression() !== ref) continue;
    let arg: Node | undefined = call.getArguments()[index];
    if (arg && property !== undefined) {
      const p = Node.isObjectLiteralExpression(arg) ? arg.getProperty(property) : undefined;
      arg = p && Node.isPropertyAssignment(p) ? p.getInitializer() : p && Node.isShorthandPropertyAssignment(p) ? p : undefined;
    }
    const behind = arg && (Node.isIdentifier(arg) || Node.isShorthandPropertyAssignment(arg)) ? declarationBehind(arg, depth + 1) : undefined;
    if (!behind) return undefined;
    found.add(behind);
  }
  return found.size === 1 ? [...found][0] : undefined;
}
