/**
 * `task-store`: the SDK's in-memory task store and task message queue (experimental tasks:
 * `new InMemoryTaskStore()`, `new InMemoryTaskMessageQueue()`) become the runtime's shared ones,
 * `createTaskStore()` and `createTaskMessageQueue()` from @mcp-migrate/runtime (Redis when
 * `MCP_MIGRATE_STORE` names one), so a client's `tasks/get`, `tasks/result`, `tasks/list` and
 * `tasks/cancel` work on whichever replica they land, and requests queued for a task are delivered by
 * a `tasks/result` on any replica and answered on the replica that asked.
 *
 * Works from the finding's node, whichever rule reported it: the `new` expression, or the variable,
 * property or field it initializes (`const taskStore = new InMemoryTaskStore()`, `{ taskMessageQueue:
 * new InMemoryTaskMessageQueue() }`, `this.store = new InMemoryTaskStore()`). The call stays where
 * the server made it (module level or per session: the runtime's stores share one backend per
 * process). A declared type naming the in-memory class follows; imports left unused go.
 *
 * Not rewritten (marker instead): subclasses and the project's own implementations (their extra
 * behaviour is in-process: waiters, resolvers), constructor arguments, and holders used through
 * members the SDK interfaces do not have (`cleanup()`, `getAllTasks()`).
 */
import { Node, SyntaxKind, type CallExpression, type Identifier, type ImportDeclaration, type ImportSpecifier, type NewExpression, type PropertyDeclaration, type TypeNode } from 'ts-morph';
import { defineTransform, type LocatedFinding, type TransformContext } from './define-transform.js';

const REPLACEMENTS: Record<string, { factory: string; type: string; members: readonly string[] }> = {
  InMemoryTaskStore: { factory: 'createTaskStore', type: 'StoreTaskStore', members: ['createTask', 'getTask', 'storeTaskResult', 'getTaskResult', 'updateTaskStatus', 'listTasks'] },
  InMemoryTaskMessageQueue: { factory: 'createTaskMessageQueue', type: 'StoreTaskMessageQueue', members: ['enqueue', 'dequeue', 'dequeueAll'] },
};

export default defineTransform({
  id: 'task-store',
  title: 'In-memory task store and task message queue → shared ones',
  fixes: ['no-in-memory-task-store'],
  run(ctx) {
    const unused: ImportSpecifier[] = [];
    for (const f of ctx.findings) {
      const reason = rewrite(ctx, f, unused);
      if (reason) ctx.todo(f, reason);
    }
    removeSpecifiers(ctx, unused);
  },
});

function rewrite(ctx: TransformContext, f: LocatedFinding, unused: ImportSpecifier[]): string | undefined {
  const created = creation(f.node);
  if (created && Node.isCallExpression(created) && /^(createTaskStore|createTaskMessageQueue)$/.test(created.getExpression().getText())) {
    ctx.skip(f); // already the runtime's
    return undefined;
  }
  if (!created || !Node.isNewExpression(created)) return 'not created by `new` where it is declared: give the server `createTaskStore()` / `createTaskMessageQueue()` from @mcp-migrate/runtime as its `taskStore` / `taskMessageQueue`';
  const callee = created.getExpression();
  const cls = importedName(callee);
  const r = cls ? REPLACEMENTS[cls] : undefined;
  if (!cls || !r) {
    return `\`${callee.getText()}\` is the project's own (or a derived) task store, whose extra behaviour lives in this process: back it with \`createTaskStore()\` / \`createTaskMessageQueue()\` from @mcp-migrate/runtime by hand, or run \`mcp-migrate proxy --affinity owner\``;
  }
  if (created.getArguments().length > 0) return `\`new ${cls}(…)\` takes arguments the shared store has no equivalent for: replace it by hand with \`${r.factory}()\` from @mcp-migrate/runtime`;
  const holder = holderOf(created);
  const other = holder ? foreignMember(holder, r.members) : undefined;
  if (other) return `\`${other.getText()}\` (line ${other.getStartLineNumber()}) is not part of the SDK's ${cls === 'InMemoryTaskStore' ? 'TaskStore' : 'TaskMessageQueue'} interface, which is all a shared store offers: remove the call, then run apply again`;

  const sf = f.sourceFile;
  ctx.replace(sf, created.getStart(), created.getEnd(), `${r.factory}()`);
  ctx.importRuntime(sf, r.factory);
  const typeNode = holder?.typeNode;
  if (typeNode && typeNode.getText() === callee.getText()) {
    ctx.replace(sf, typeNode.getStart(), typeNode.getEnd(), r.type);
    ctx.importRuntime(sf, r.type);
  }
  // The analyzer reports a queue given to the same server as the store with the store: it goes too.
  const queues = cls === 'InMemoryTaskStore' && holder ? companionQueues(holder.refs) : [];
  for (const q of queues) {
    ctx.replace(sf, q.getStart(), q.getEnd(), `${REPLACEMENTS.InMemoryTaskMessageQueue!.factory}()`);
    ctx.importRuntime(sf, REPLACEMENTS.InMemoryTaskMessageQueue!.factory);
  }
  for (const [c, rewritten] of [[callee, [created, ...(typeNode ? [typeNode] : [])]] as const, ...queues.map((q) => [q.getExpression(), queues] as const)]) {
    const spec = unusedImport(c, [...rewritten]);
    if (spec && !unused.includes(spec)) unused.push(spec);
  }
  const also = queues.length ? `; the \`new InMemoryTaskMessageQueue()\` given to the same server is \`${REPLACEMENTS.InMemoryTaskMessageQueue!.factory}()\`` : '';
  ctx.changed(f, `\`new ${cls}()\` is \`${r.factory}()\`: ${cls === 'InMemoryTaskStore' ? 'tasks, their status and results' : 'messages queued for tasks'} are shared by every replica (Redis with MCP_MIGRATE_STORE)${also}`);
  return undefined;
}

/** `new InMemoryTaskMessageQueue()` beside the store in a server's options (`{ taskStore, taskMessageQueue: new … }`). */
function companionQueues(storeRefs: Node[]): NewExpression[] {
  const out: NewExpression[] = [];
  for (const r of storeRefs) {
    const prop = r.getParent();
    const literal = prop && (Node.isShorthandPropertyAssignment(prop) || Node.isPropertyAssignment(prop)) ? prop.getParent() : undefined;
    if (!literal || !Node.isObjectLiteralExpression(literal)) continue;
    const q = literal.getProperty('taskMessageQueue');
    const init = q && Node.isPropertyAssignment(q) ? q.getInitializer() : undefined;
    if (init && Node.isNewExpression(init) && init.getArguments().length === 0 && importedName(init.getExpression()) === 'InMemoryTaskMessageQueue' && !out.includes(init)) out.push(init);
  }
  return out;
}

/** The `new` expression (or, once migrated, the factory call) behind the finding's node. */
function creation(node: Node): NewExpression | CallExpression | undefined {
  const unwrap = (e: Node | undefined): Node | undefined => {
    let cur = e;
    while (cur && (Node.isParenthesizedExpression(cur) || Node.isAsExpression(cur) || Node.isSatisfiesExpression(cur))) cur = cur.getExpression();
    return cur;
  };
  if (Node.isNewExpression(node) || Node.isCallExpression(node)) return node;
  const p = node.getParent();
  let init: Node | undefined;
  if (p && Node.isPropertyDeclaration(p)) init = fieldCreation(p);
  else if (p && (Node.isVariableDeclaration(p) || Node.isPropertyAssignment(p))) init = p.getInitializer();
  else if (p && Node.isPropertyAccessExpression(p)) {
    const b = p.getParent();
    if (b && Node.isBinaryExpression(b) && b.getLeft() === p && b.getOperatorToken().getKind() === SyntaxKind.EqualsToken) init = b.getRight();
  } else if (p && Node.isShorthandPropertyAssignment(p)) {
    const d = p.getNameNode().getSymbol()?.getDeclarations()[0];
    init = d && Node.isVariableDeclaration(d) ? d.getInitializer() : undefined;
  }
  const e = unwrap(init);
  return e && (Node.isNewExpression(e) || Node.isCallExpression(e)) ? e : undefined;
}

/**
 * What a field is created with: its initializer, or else the one `this.<field> = new …` of its class
 * (the analyzer reports a field assigned in the constructor at its declaration).
 */
function fieldCreation(field: PropertyDeclaration): Node | undefined {
  const init = field.getInitializer();
  if (init && (Node.isNewExpression(init) || Node.isCallExpression(init))) return init;
  const cls = field.getParent();
  const assigned = cls.getDescendantsOfKind(SyntaxKind.BinaryExpression).filter((b) => {
    const left = b.getLeft();
    return b.getOperatorToken().getKind() === SyntaxKind.EqualsToken && Node.isPropertyAccessExpression(left) &&
      left.getExpression().getKind() === SyntaxKind.ThisKeyword && left.getName() === field.getName();
  });
  const created = assigned.map((b) => b.getRight()).filter((r) => Node.isNewExpression(r) || Node.isCallExpression(r));
  return created.length === 1 ? created[0] : init;
}

/** The SDK class a callee names, through its import (`import { InMemoryTaskStore as Store }`). */
function importedName(callee: Node): string | undefined {
  const id = Node.isPropertyAccessExpression(callee) ? callee.getNameNode() : callee;
  if (!Node.isIdentifier(id)) return undefined;
  const d = id.getSymbol()?.getDeclarations()[0];
  if (d && Node.isImportSpecifier(d)) return d.getName();
  // `sdk.InMemoryTaskStore` through a namespace import
  if (Node.isPropertyAccessExpression(callee)) return callee.getName();
  return undefined;
}

/** The variable, property or field holding the store, with its declared type. */
function holderOf(created: NewExpression): { refs: Node[]; typeNode?: TypeNode } | undefined {
  let n: Node = created;
  while (n.getParent() && (Node.isParenthesizedExpression(n.getParentOrThrow()) || Node.isAsExpression(n.getParentOrThrow()))) n = n.getParentOrThrow();
  const p = n.getParent();
  if (p && (Node.isVariableDeclaration(p) || Node.isPropertyDeclaration(p)) && Node.isIdentifier(p.getNameNode())) {
    return { refs: (p.getNameNode() as Identifier).findReferencesAsNodes(), typeNode: p.getTypeNode() };
  }
  // `this.queue = new …` in the class's code: the field declared for it.
  const left = p && Node.isBinaryExpression(p) && p.getRight() === n ? p.getLeft() : undefined;
  const field = left && Node.isPropertyAccessExpression(left) && left.getExpression().getKind() === SyntaxKind.ThisKeyword ? left.getNameNode().getSymbol()?.getDeclarations()[0] : undefined;
  if (field && Node.isPropertyDeclaration(field) && Node.isIdentifier(field.getNameNode())) {
    return { refs: (field.getNameNode() as Identifier).findReferencesAsNodes(), typeNode: field.getTypeNode() };
  }
  return undefined;
}

/** A use of the holder through a member outside the SDK interface. */
function foreignMember(holder: { refs: Node[] }, members: readonly string[]): Node | undefined {
  for (const r of holder.refs) {
    const site = Node.isIdentifier(r) && Node.isPropertyAccessExpression(r.getParent()) && (r.getParent() as import('ts-morph').PropertyAccessExpression).getNameNode() === r ? r.getParentOrThrow() : r;
    const access = site.getParent();
    if (access && Node.isPropertyAccessExpression(access) && access.getExpression() === site && !members.includes(access.getName())) return access;
  }
  return undefined;
}

/** The import of the in-memory class, when the rewritten nodes were its only uses in the file. */
function unusedImport(callee: Node, rewritten: Node[]): ImportSpecifier | undefined {
  if (!Node.isIdentifier(callee)) return undefined;
  const spec = callee.getSymbol()?.getDeclarations()[0];
  if (!spec || !Node.isImportSpecifier(spec)) return undefined;
  const inRewritten = (r: Node): boolean => rewritten.some((w) => r.getStart() >= w.getStart() && r.getEnd() <= w.getEnd());
  const uses = (spec.getNameNode() as Identifier).findReferencesAsNodes().filter((r) => r.getSourceFile() === callee.getSourceFile() && r.getFirstAncestorByKind(SyntaxKind.ImportDeclaration) === undefined);
  return uses.every(inRewritten) ? spec : undefined;
}

/** Drops the specifiers (one edit per import declaration: the whole declaration when nothing is left). */
function removeSpecifiers(ctx: TransformContext, specs: ImportSpecifier[]): void {
  const byImport = new Map<ImportDeclaration, Set<ImportSpecifier>>();
  for (const spec of specs) byImport.set(spec.getImportDeclaration(), (byImport.get(spec.getImportDeclaration()) ?? new Set()).add(spec));
  for (const [imp, gone] of byImport) {
    const sf = imp.getSourceFile();
    const kept = imp.getNamedImports().filter((n) => !gone.has(n));
    if (kept.length === 0 && !imp.getDefaultImport() && !imp.getNamespaceImport()) {
      const end = imp.getEnd() + (/^[ \t]*\r?\n/.exec(sf.getFullText().slice(imp.getEnd()))?.[0].length ?? 0);
      ctx.replace(sf, imp.getStart(), end, '');
    } else {
      const bindings = imp.getImportClauseOrThrow().getNamedBindingsOrThrow();
      ctx.replace(sf, bindings.getStart(), bindings.getEnd(), `{ ${kept.map((n) => n.getText()).join(', ')} }`);
    }
  }
}
