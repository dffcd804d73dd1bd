/**
 * The server's session-opening code: the statements around `new <Transport>(…)` that create the
 * transport, wire it and connect the MCP server to it, which the registry must be able to run again
 * (with the stored id) to restore a session on another replica.
 *
 * In the block that creates the transport, the opening code ends before `<transport>.handleRequest(…)`
 * (or at the end of the block when the request is handled after it, dropping trailing
 * `<outer> = <transport>;` aliases, which stay). It starts at the transport's creation, extended
 * backwards over the statements that declare only what the opening code uses (`const server =
 * getServer()`, `const eventStore = …`); it stops at a guard (a statement that can return from the
 * handler, such as a capacity check answering 503), which stays in the handler and runs for new
 * sessions only. An early exit on failure inside the opening code (`catch (error) { answerError(res,
 * error); return true; }` after the transport exists) is kept as {@link OpeningCode.earlyExit} when every
 * such `return` is in a `catch` and gives the same literal: the extracted opener then resolves `undefined` there, and the handler
 * returns that value when it does.
 */
import { Node, SyntaxKind, type ArrowFunction, type FunctionDeclaration, type FunctionExpression, type MethodDeclaration, type NewExpression, type ReturnStatement, type Statement } from 'ts-morph';

export type HandlerFn = ArrowFunction | FunctionExpression | FunctionDeclaration | MethodDeclaration;

export interface OpeningCode {
  /** The request handler that opens sessions. */
  handler: HandlerFn;
  /** The variable the new transport is assigned to. */
  transportVar: string;
  /** Whether the extracted statements declare it (`const transport = new …`). */
  declaredHere: boolean;
  /** The extracted statements (contiguous, in one block). */
  statements: Statement[];
  start: number;
  end: number;
  /** Returns of the handler inside the opening code (after the server answered), all giving `value` (`''`: a bare `return`). */
  earlyExit?: { returns: ReturnStatement[]; value: string };
}

export function isHandlerFn(n: Node): n is HandlerFn {
  return Node.isArrowFunction(n) || Node.isFunctionExpression(n) || Node.isFunctionDeclaration(n) || Node.isMethodDeclaration(n);
}

/** Finds the opening code around `created`; a string says why it cannot be extracted. */
export function findOpeningCode(created: NewExpression): OpeningCode | string {
  const openStmt = statementIn(created);
  const block = openStmt?.getParent();
  if (!openStmt || !block || !(Node.isBlock(block) || Node.isIfStatement(block))) return 'the transport is not created in a block of statements apply can extract; extract the session-opening code into a function and register it with `registry.opener(fn)` (docs/apply.md)';
  const handler = block.getFirstAncestor(isHandlerFn);
  if (!handler) return 'the transport is not created inside a request handler';
  const transportVar = transportVariable(openStmt);
  if (!transportVar) return 'the new transport is not assigned to a variable (`transport = new …` or `const transport = new …`)';
  // A branch without braces (`else if (!id) t = new T(…), …;`, as minifiers write) is a block of one statement.
  const statements = Node.isBlock(block) ? block.getStatements() : [openStmt];
  const openIndex = statements.indexOf(openStmt);
  const handles = (s: Node, v: string): boolean => new RegExp(`\\b${v}\\.handleRequest\\(`).test(s.getText());
  let end = statements.findIndex((s, i) => i > openIndex && handles(s, transportVar));
  if (end < 0) {
    // Handled after the block (`if (!transport) { …create… } await transport.handleRequest(…)`).
    if (!handledAfter(block, handler, handles)) return `no \`${transportVar}.handleRequest(…)\` follows the transport's creation`;
    end = statements.length;
    while (end - 1 > openIndex && isAliasAssignment(statements[end - 1]!, transportVar)) end -= 1;
  }
  let start = openIndex;
  while (start > 0 && declaresOnlyFor(statements[start - 1]!, statements, start - 1, end, handler)) start -= 1;
  const extracted = statements.slice(start, end);
  const returns = extracted.flatMap((s) => returnsOf(s, handler));
  const values = new Set(returns.map((r) => r.getExpression()?.getText() ?? ''));
  const literal = (v: string): boolean => v === '' || /^(true|false|null|undefined|void 0|-?\d+(\.\d+)?|"[^"\\]*"|'[^'\\]*')$/.test(v);
  // Only a failure exit (in a `catch` of the opening code) can be kept: a decision the code takes on the request would be taken again on the restoring request.
  const onFailure = (r: ReturnStatement): boolean => r.getFirstAncestor((a) => a === handler || Node.isCatchClause(a)) !== handler;
  if (!returns.every(onFailure) || values.size > 1 || [...values].some((v) => !literal(v))) {
    return 'the session-opening code can return from the handler between the transport\'s creation and `handleRequest` (an early exit after the transport exists): a restore must run it to completion; move the check before the transport is created, or extract the opening code into a function registered with `registry.opener(fn)` by hand';
  }
  const earlyExit = returns.length > 0 ? { returns, value: [...values][0]! } : undefined;
  return { handler, transportVar, declaredHere: Node.isVariableStatement(openStmt), statements: extracted, start: extracted[0]!.getStart(), end: extracted.at(-1)!.getEnd(), earlyExit };
}

/** The statement holding `n` that is one of a block's statements, or the whole branch of an `if` without braces. */
function statementIn(n: Node): Statement | undefined {
  let cur: Node | undefined = n;
  while (cur && !(Node.isStatement(cur) && (Node.isBlock(cur.getParent() ?? cur) || isBranch(cur)))) cur = cur.getParent();
  return cur as Statement | undefined;
}

/** `s` is the `then` or `else` statement of its `if` (not a block). */
function isBranch(s: Node): boolean {
  const parent = s.getParent();
  return !Node.isBlock(s) && parent !== undefined && Node.isIfStatement(parent) && (parent.getThenStatement() === s || parent.getElseStatement() === s);
}

function transportVariable(stmt: Statement): string | undefined {
  if (Node.isVariableStatement(stmt)) {
    const d = stmt.getDeclarations()[0];
    return d && Node.isNewExpression(d.getInitializer() ?? stmt) ? d.getName() : undefined;
  }
  if (Node.isExpressionStatement(stmt)) {
    let e = stmt.getExpression();
    // `t = new T(…), t.onclose = …, await server.connect(t)`: the first of a comma sequence.
    while (Node.isBinaryExpression(e) && e.getOperatorToken().getKind() === SyntaxKind.CommaToken) e = e.getLeft();
    if (Node.isBinaryExpression(e) && e.getOperatorToken().getKind() === SyntaxKind.EqualsToken && Node.isIdentifier(e.getLeft())) return e.getLeft().getText();
  }
  return undefined;
}

/** `outer = transport;` */
function isAliasAssignment(s: Statement, transportVar: string): boolean {
  if (!Node.isExpressionStatement(s)) return false;
  const e = s.getExpression();
  return Node.isBinaryExpression(e) && e.getOperatorToken().getKind() === SyntaxKind.EqualsToken && Node.isIdentifier(e.getLeft()) && e.getRight().getText() === transportVar;
}

/** Some statement after the block's enclosing statements, within the handler, handles the request. */
function handledAfter(block: Node, handler: HandlerFn, handles: (s: Node, v: string) => boolean): boolean {
  for (let cur: Node | undefined = block; cur && cur !== handler; cur = cur.getParent()) {
    const parent = cur.getParent();
    if (!parent || !Node.isBlock(parent) || !Node.isStatement(cur)) continue;
    const after = parent.getStatements().slice(parent.getStatements().indexOf(cur) + 1);
    if (after.some((s) => /\.handleRequest\(/.test(s.getText()) && [...s.getText().matchAll(/\b(\w+)\.handleRequest\(/g)].some((m) => handles(s, m[1]!)))) return true;
  }
  return false;
}

/** A statement that declares variables used only within `[from, end)` and can leave nothing else behind. */
function declaresOnlyFor(s: Statement, statements: Statement[], from: number, end: number, handler: HandlerFn): boolean {
  if (!Node.isVariableStatement(s) || returnsFrom(s, handler)) return false;
  // `const server = …`, `const { server, cleanup } = …`
  const names = s.getDeclarations().flatMap((d) => {
    const name = d.getNameNode();
    return Node.isIdentifier(name) ? [name] : name.getDescendantsOfKind(SyntaxKind.BindingElement).map((b) => b.getNameNode()).filter(Node.isIdentifier);
  });
  if (names.length === 0) return false;
  const lo = statements[from]!.getStart();
  const hi = statements[end - 1]!.getEnd();
  return names.every((n) => n.findReferencesAsNodes().every((r) => r.getSourceFile() !== s.getSourceFile() || (r.getStart() >= lo && r.getEnd() <= hi)));
}

/** Whether `s` contains a `return` of the handler itself, not of a nested function. */
function returnsFrom(s: Node, handler: HandlerFn): boolean {
  return returnsOf(s, handler).length > 0;
}

/** The `return` statements of the handler itself in `s` (not those of nested functions). */
function returnsOf(s: Node, handler: HandlerFn): ReturnStatement[] {
  return s.getDescendantsOfKind(SyntaxKind.ReturnStatement).filter((r) => r.getFirstAncestor((a) => Node.isFunctionLikeDeclaration(a) || Node.isArrowFunction(a)) === handler);
}
