/**
 * `event-store`: an in-memory SSE event store (an SDK `EventStore` implementation holding events in
 * a Map or array) becomes the runtime's store-backed one, `createEventStore()` from
 * @mcp-migrate/runtime, so `Last-Event-ID` resumption works on whichever replica the client
 * reconnects to. Each `new X()` of the in-memory class becomes `createEventStore()`, in whichever
 * analyzed file it is (imports are followed, so analyzing one server file or the folder around it
 * gives that file the same text); the class is then removed, and imports of it are dropped.
 * Object-literal stores and classes used in other ways (subclassed, passed around) get an
 * `@mcp-migrate-todo` marker naming the use (file:line).
 */
import path from 'node:path';
import { Node, type ClassDeclaration, type Identifier, type ImportSpecifier, type NewExpression } from 'ts-morph';
import { defineTransform, type LocatedFinding, type TransformContext } from './define-transform.js';

export default defineTransform({
  id: 'event-store',
  title: 'In-memory event store → store-backed event store',
  fixes: ['no-in-memory-event-store'],
  run(ctx) {
    for (const f of ctx.findings) {
      const reason = rewrite(ctx, f);
      if (reason) ctx.todo(f, reason);
    }
  },
});

function rewrite(ctx: TransformContext, f: LocatedFinding): string | undefined {
  const sf = f.sourceFile;
  const node = f.node;
  // `new InMemoryEventStore()` of a class defined outside the analyzed files (SDK example store).
  if (Node.isNewExpression(node)) {
    replaceNew(ctx, node);
    const id = node.getExpression();
    if (Node.isIdentifier(id)) {
      const spec = id.getSymbol()?.getDeclarations()[0];
      if (spec && Node.isImportSpecifier(spec)) {
        const others = (spec.getNameNode() as Identifier).findReferencesAsNodes().filter((r) => r !== spec.getNameNode() && r !== id && r.getSourceFile() === sf);
        if (others.length === 0) removeImport(ctx, spec);
      }
    }
    ctx.changed(f, '`new …EventStore()` is a store-backed `createEventStore()`: `Last-Event-ID` works on every replica');
    return undefined;
  }
  const cls = node.getParent();
  if (Node.isClassExpression(node)) {
    return `\`${f.finding.symbol}\` is a class expression (as bundlers emit classes), which this codemod does not remove: pass \`createEventStore()\` from @mcp-migrate/runtime as the transport's \`eventStore\` where it is created, then delete the class`;
  }
  if (!cls || !Node.isClassDeclaration(cls) || !Node.isIdentifier(node)) {
    return 'an in-memory event store that is not a class: pass `createEventStore()` from @mcp-migrate/runtime as the transport\'s `eventStore` instead';
  }
  const name = node.getText();
  // Every use, in every analyzed file (imports followed): the result does not depend on which path was analyzed.
  const refs = (node as Identifier).findReferencesAsNodes().filter((r) => r !== node);
  const news: NewExpression[] = [];
  const imports: ImportSpecifier[] = [];
  for (const r of refs) {
    const p = r.getParent();
    if (p && Node.isNewExpression(p) && p.getExpression() === r && p.getArguments().length === 0) news.push(p);
    else if (p && Node.isImportSpecifier(p)) imports.push(p);
    else return `\`${name}\` is used other than by \`new ${name}()\` (${where(ctx, r)}): pass \`createEventStore()\` from @mcp-migrate/runtime as the transport's \`eventStore\` instead`;
  }
  for (const n of news) replaceNew(ctx, n);
  // Imports whose every use became createEventStore() go too.
  for (const spec of imports) removeImport(ctx, spec);
  removeClass(ctx, cls);
  const files = new Set(news.map((n) => n.getSourceFile()));
  ctx.changed(f, `\`${name}\` removed; its ${news.length} use${news.length === 1 ? '' : 's'}${files.size > 1 || (files.size === 1 && !files.has(sf)) ? ` in ${files.size} file${files.size === 1 ? '' : 's'}` : ''} now call${news.length === 1 ? 's' : ''} \`createEventStore()\` (events in the shared store: a resumed stream is served on any replica)`);
  return undefined;
}

/** `file:line` of a node, relative to the analyzed root. */
function where(ctx: TransformContext, n: Node): string {
  return `${path.relative(ctx.root, n.getSourceFile().getFilePath()).split(path.sep).join('/')}:${n.getStartLineNumber()}`;
}

/** Removes an import specifier (the whole declaration when it is the only binding). */
function removeImport(ctx: TransformContext, spec: ImportSpecifier): void {
  const sf = spec.getSourceFile();
  const imp = spec.getImportDeclaration();
  if (imp.getNamedImports().length === 1 && !imp.getDefaultImport() && !imp.getNamespaceImport()) ctx.replace(sf, imp.getStart(), fullLineEnd(sf.getFullText(), imp.getEnd()), '');
  else ctx.replace(sf, spec.getStart(), afterComma(sf.getFullText(), spec.getEnd()), '');
}

function replaceNew(ctx: TransformContext, n: NewExpression): void {
  ctx.replace(n.getSourceFile(), n.getStart(), n.getEnd(), 'createEventStore()');
  ctx.importRuntime(n.getSourceFile(), 'createEventStore');
}

function removeClass(ctx: TransformContext, cls: ClassDeclaration): void {
  const text = cls.getSourceFile().getFullText();
  ctx.replace(cls.getSourceFile(), cls.getStart(true), fullLineEnd(text, cls.getEnd()), '');
}

/** Position after the end of line at `pos` (swallows the line break). */
function fullLineEnd(text: string, pos: number): number {
  const m = /^[ \t]*\r?\n/.exec(text.slice(pos));
  return pos + (m ? m[0].length : 0);
}

function afterComma(text: string, pos: number): number {
  const m = /^\s*,\s*/.exec(text.slice(pos));
  return pos + (m ? m[0].length : 0);
}
