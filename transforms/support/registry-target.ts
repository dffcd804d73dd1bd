/**
 * Where a session registry lives and how the code reaches it, from the finding's node (whatever rule
 * reported it): a variable (module level or a closure's), a class field (`this.sessions`), a property
 * of an object literal held by a variable (`state.transports`), and the parameters of functions in the
 * same file it is passed to (`mountMcp(app, transports)`).
 *
 * A *site* is an expression that evaluates to the registry: the variable or parameter identifier, or
 * the `this.sessions` / `state.transports` property access.
 */
import { Node, SyntaxKind, type Expression, type Identifier, type ParameterDeclaration, type SourceFile, type TypeNode } from 'ts-morph';

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
  /** Parameters it is passed to. */
  aliases: ParameterDeclaration[];
}

/** Locates the registry declared at `node` (the finding's node or its parent); a string says why not. */
export function locateRegistry(node: Node): RegistryTarget | string {
  const decl = Node.isIdentifier(node) || Node.isPrivateIdentifier(node) || Node.isStringLiteral(node) ? node.getParent() : node;
  if (!decl) return 'the registry is not a declaration apply can follow';
  const sf = decl.getSourceFile();
  let target: Omit<RegistryTarget, 'sites' | 'aliases' | 'typeNodes'> & { nameNode: Node; typeNode?: TypeNode };
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
  followParameters(sf, sites, aliases, 0);
  const typeNodes = [target.typeNode, ...aliases.map((a) => a.getTypeNode())].filter((t): t is TypeNode => !!t);
  return { kind: target.kind, name: target.name, init: target.init, classNode: target.classNode, typeNodes, sites, aliases };
}

/** The expression a reference stands for: the identifier, or `this.x` / `holder.x`. */
function siteOf(ref: Node, kind: RegistryTarget['kind']): Expression | undefined {
  if (kind === 'variable') return Node.isIdentifier(ref) ? ref : undefined;
  const access = ref.getParent();
  if (!access || !Node.isPropertyAccessExpression(access) || access.getNameNode() !== ref) return undefined;
  if (kind === 'field' && access.getExpression().getKind() !== SyntaxKind.ThisKeyword) return undefined;
  return access;
}

/** Sites passed as an argument to a function of this file: that parameter's references are sites too. */
function followParameters(sf: SourceFile, sites: Expression[], aliases: ParameterDeclaration[], depth: number): void {
  if (depth > 2) return;
  for (const site of [...sites]) {
    const call = site.getParent();
    if (!call || !Node.isCallExpression(call) || !call.getArguments().includes(site)) continue;
    const index = call.getArguments().indexOf(site);
    const callee = call.getExpression();
    const decl = Node.isIdentifier(callee) ? callee.getSymbol()?.getDeclarations()[0] : undefined;
    const fn = decl && Node.isVariableDeclaration(decl) ? decl.getInitializer() : decl;
    if (!fn || fn.getSourceFile() !== sf || !(Node.isFunctionDeclaration(fn) || Node.isArrowFunction(fn) || Node.isFunctionExpression(fn))) continue;
    const param = fn.getParameters()[index];
    if (!param || !Node.isIdentifier(param.getNameNode()) || aliases.includes(param)) continue;
    aliases.push(param);
    const more = (param.getNameNode() as Identifier).findReferencesAsNodes().filter((r) => r !== param.getNameNode() && Node.isIdentifier(r)) as Identifier[];
    sites.push(...more);
    followParameters(sf, more, aliases, depth + 1);
  }
}
