/**
 * The keyed containers behind a process-state finding (`no-global-connection-state`), for the
 * `shared-map` transform: a module-level `new Map()`, a class field initialized to one (a property
 * declaration or `this.x = new Map()` in the constructor), or, for an OAuth provider handed to the SDK's
 * auth router, every collection field of the provider's class and of the classes it holds in fields
 * (`this.clientsStore = new ClientsStore()`). Also whether an object of a class is made once per process,
 * which is what makes one store-backed map per field right (two instances would share it).
 */
import { Node, type ClassDeclaration, type Identifier, type NewExpression, type SourceFile, type TypeNode } from 'ts-morph';

/** One container to move to the store. */
export interface Container {
  /** How the code names it (`DemoAuthProvider.codes`, `tokens`), for messages. */
  label: string;
  /** The identifier its references are found from (the variable's or the field's name). */
  name: Identifier;
  /** Its initializer, when it is `new Map(…)`/`new Set(…)`/`[]`/`{}`. */
  init: Node;
  /** The declared type (`Map<string, T>`), where there is one. */
  typeNode?: TypeNode;
  /** The class whose field it is. */
  cls?: ClassDeclaration;
  sourceFile: SourceFile;
}

const COLLECTION = /^new (Map|Set|WeakMap|Array)\b|^\[\]$|^\{\}$/;
const MAX_DEPTH = 3;

/** Whether `init` is `new Map()` with no entries (a `Map` the transform can move). */
export function isEmptyNewMap(init: Node): init is NewExpression {
  return Node.isNewExpression(init) && init.getExpression().getText() === 'Map' && init.getArguments().length === 0;
}

/**
 * The containers behind `node` (a finding's node): the option property (`provider`, `clientsStore`)
 * of an auth router call, a module-level variable, or a class field. `undefined` when `node` is none
 * of these.
 */
export function containersAt(node: Node): Container[] | undefined {
  const option = [node, node.getParent()].find((n) => n && (Node.isPropertyAssignment(n) || Node.isShorthandPropertyAssignment(n)));
  if (option && (Node.isPropertyAssignment(option) || Node.isShorthandPropertyAssignment(option))) {
    const value = Node.isPropertyAssignment(option) ? option.getInitializer() : option.getNameNode();
    const cls = value && classOfValue(value);
    return cls ? classContainers(cls, `${cls.getName() ?? 'class'}.`, 0) : undefined;
  }
  const one = fieldOrVariable(node);
  return one ? [one] : undefined;
}

/** The class whose `new` `value` is (directly, or through the variable it names). */
export function classOfValue(value: Node): ClassDeclaration | undefined {
  let v: Node | undefined = value;
  if (Node.isIdentifier(v)) {
    const decl = v.getDefinitionNodes().find((d) => Node.isVariableDeclaration(d));
    v = decl && Node.isVariableDeclaration(decl) ? decl.getInitializer() : undefined;
  }
  if (!v || !Node.isNewExpression(v)) return undefined;
  const target = v.getExpression();
  if (!Node.isIdentifier(target)) return undefined;
  const cls = target.getDefinitionNodes().find((d) => Node.isClassDeclaration(d));
  return cls && Node.isClassDeclaration(cls) ? cls : undefined;
}

/** Collection fields of `cls` (and of the program's classes it holds in fields), labelled `prefix` + the path of fields (`Provider.clientsStore.clients`). */
function classContainers(cls: ClassDeclaration, prefix: string, depth: number): Container[] {
  const out: Container[] = [];
  for (const { name, init } of fieldInitializers(cls)) {
    if (COLLECTION.test(init.getText())) out.push(fieldContainer(cls, name, init, prefix));
    else if (depth < MAX_DEPTH && Node.isNewExpression(init)) {
      const inner = classOfValue(init);
      if (inner) out.push(...classContainers(inner, `${prefix}${name.getText()}.`, depth + 1));
    }
  }
  return out;
}

function fieldContainer(cls: ClassDeclaration, name: Identifier, init: Node, prefix: string): Container {
  const declared = cls.getProperty(name.getText());
  const typeNode = declared?.getTypeNode();
  return { label: `${prefix}${name.getText()}`, name, init, typeNode, cls, sourceFile: cls.getSourceFile() };
}

/** `name = init` property declarations and `this.name = init` constructor statements of `cls`. */
function fieldInitializers(cls: ClassDeclaration): Array<{ name: Identifier; init: Node }> {
  const out: Array<{ name: Identifier; init: Node }> = [];
  for (const p of cls.getProperties()) {
    const init = p.getInitializer();
    const name = p.getNameNode();
    if (init && Node.isIdentifier(name) && !p.isStatic()) out.push({ name, init });
  }
  for (const ctor of cls.getConstructors()) {
    for (const st of ctor.getStatements()) {
      const e = Node.isExpressionStatement(st) ? st.getExpression() : undefined;
      if (!e || !Node.isBinaryExpression(e) || e.getOperatorToken().getText() !== '=') continue;
      const left = e.getLeft();
      if (Node.isPropertyAccessExpression(left) && Node.isThisExpression(left.getExpression())) out.push({ name: left.getNameNode() as Identifier, init: e.getRight() });
    }
  }
  return out;
}

/** The module-level variable or class field `node` names (its declaration's name, or `this.x` assigned in a constructor). */
function fieldOrVariable(node: Node): Container | undefined {
  const decl = [node, node.getParent()].find((n) => n && (Node.isVariableDeclaration(n) || Node.isPropertyDeclaration(n) || Node.isPropertyAccessExpression(n)));
  if (decl && Node.isVariableDeclaration(decl)) {
    const name = decl.getNameNode();
    const init = decl.getInitializer();
    if (!Node.isIdentifier(name) || !init || !Node.isSourceFile(decl.getVariableStatement()?.getParent())) return undefined;
    return { label: name.getText(), name, init, typeNode: decl.getTypeNode(), sourceFile: decl.getSourceFile() };
  }
  const cls = decl?.getFirstAncestor((a) => Node.isClassDeclaration(a));
  if (!decl || !cls || !Node.isClassDeclaration(cls)) return undefined;
  const fieldName = Node.isPropertyDeclaration(decl) || Node.isPropertyAccessExpression(decl) ? decl.getName() : undefined;
  const field = fieldInitializers(cls).find((f) => f.name.getText() === fieldName);
  return field ? fieldContainer(cls, field.name, field.init, `${cls.getName() ?? 'class'}.`) : undefined;
}

/**
 * Why an object of `cls` may be made more than once per process, or `undefined` when every visible
 * construction runs once: exactly one `new`, at module level outside any loop, in the constructor of a
 * class made once, or in a function called at most once by the analyzed code, itself once (a function
 * exported and called by code that is not analyzed counts as called once: a limit of what is visible).
 */
export function madeMoreThanOnce(cls: ClassDeclaration, depth = 0): string | undefined {
  const sites = cls.getNameNode()?.findReferencesAsNodes().filter((r) => {
    const p = r.getParent();
    return !!p && Node.isNewExpression(p) && p.getExpression() === r;
  }) ?? [];
  if (sites.length > 1) return `\`${cls.getName()}\` is constructed in ${sites.length} places (lines ${sites.map((s) => s.getStartLineNumber()).join(', ')}): all its instances would share one store-backed map per field`;
  return sites[0] ? runsMoreThanOnce(sites[0], depth) : undefined;
}

function runsMoreThanOnce(site: Node, depth: number): string | undefined {
  const loop = site.getFirstAncestor((a) => Node.isIterationStatement(a) || Node.isFunctionLikeDeclaration(a) || Node.isArrowFunction(a) || Node.isFunctionExpression(a));
  if (loop && Node.isIterationStatement(loop)) return `an object is made in a loop (line ${site.getStartLineNumber()}): its instances would share one store-backed map per field`;
  const fn = site.getFirstAncestor((a) => Node.isFunctionLikeDeclaration(a) || Node.isArrowFunction(a) || Node.isFunctionExpression(a));
  if (!fn) return undefined;
  if (depth >= MAX_DEPTH) return `cannot tell whether line ${site.getStartLineNumber()} runs once per process`;
  if (Node.isConstructorDeclaration(fn)) {
    const owner = fn.getParent();
    return Node.isClassDeclaration(owner) ? madeMoreThanOnce(owner, depth + 1) : 'made in the constructor of an anonymous class';
  }
  const parent = fn.getParent();
  const nameNode = Node.isFunctionDeclaration(fn) ? fn.getNameNode() : parent && Node.isVariableDeclaration(parent) ? parent.getNameNode() : undefined;
  if (!nameNode || !Node.isIdentifier(nameNode)) return `made in a function that is not named (line ${fn.getStartLineNumber()}), which may run more than once`;
  const calls = nameNode.findReferencesAsNodes().filter((r) => r !== nameNode && !Node.isImportSpecifier(r.getParent()) && !Node.isExportSpecifier(r.getParent()));
  if (calls.length > 1) return `made in \`${nameNode.getText()}\`, which is used in ${calls.length} places: each call would make an instance sharing the same store-backed maps`;
  return calls[0] ? runsMoreThanOnce(calls[0], depth + 1) : undefined;
}
