/**
 * A custom MCP transport that multiplexes client connections: a class implementing the SDK's
 * `Transport` (recognized through `src/analyzer/sdk-types.ts`) with a keyed field (`Map<K, V>`,
 * `Record<K, V>`, index signature) whose declared values are network connections — `WebSocket` of the
 * `ws` package or the platform, `Socket` of `node:net`, `ServerResponse` of `node:http` — filled by the
 * class itself (`this.clients.set(id, ws)`). Each entry is one client's session.
 */
import { ts } from 'ts-morph';
import { skipOuter } from './ast.js';
import type { SessionFlow } from './session-flow.js';

/** Connection types by the module that declares them (`undefined`: the platform's global). */
const CONNECTIONS: Record<string, Array<string | undefined>> = {
  WebSocket: ['ws', 'isomorphic-ws', undefined],
  Socket: ['net', 'node:net'],
  ServerResponse: ['http', 'node:http'],
};

export interface ConnectionRegistry {
  field: ts.PropertyDeclaration;
  name: string;
  transport: string;
  connection: string;
}

export function connectionRegistry(cls: ts.ClassDeclaration, flow: SessionFlow): ConnectionRegistry | undefined {
  if (!cls.name || !cls.heritageClauses?.some((c) => c.token === ts.SyntaxKind.ImplementsKeyword)) return undefined;
  if (flow.sdk.kindOfSymbol(flow.checker.getSymbolAtLocation(cls.name)) !== 'transport') return undefined;
  for (const member of cls.members) {
    if (!ts.isPropertyDeclaration(member) || !ts.isIdentifier(member.name) && !ts.isPrivateIdentifier(member.name)) continue;
    const connection = connectionValue(member.type, flow.checker);
    if (connection && filledByClass(cls, member.name.text)) {
      return { field: member, name: `${cls.name.text}.${member.name.text}`, transport: cls.name.text, connection };
    }
  }
  return undefined;
}

/** The connection type a keyed container's declared values are, if they are one. */
function connectionValue(type: ts.TypeNode | undefined, checker: ts.TypeChecker): string | undefined {
  if (!type) return undefined;
  let value: ts.TypeNode | undefined;
  if (ts.isTypeReferenceNode(type) && ts.isIdentifier(type.typeName) && /^(Map|Record)$/.test(type.typeName.text)) value = type.typeArguments?.[1];
  else if (ts.isTypeLiteralNode(type)) value = type.members.find(ts.isIndexSignatureDeclaration)?.type;
  if (!value || !ts.isTypeReferenceNode(value) || !ts.isIdentifier(value.typeName)) return undefined;
  const name = value.typeName.text;
  const decl = checker.getSymbolAtLocation(value.typeName)?.getDeclarations()?.[0];
  if (decl && ts.isImportSpecifier(decl)) {
    const module = (decl.parent.parent.parent.moduleSpecifier as ts.StringLiteral).text;
    const imported = (decl.propertyName ?? decl.name).text;
    return CONNECTIONS[imported]?.includes(module) ? imported : undefined;
  }
  // The platform's global (lib.dom / @types/node), not a type the program declares itself.
  const global = !decl || decl.getSourceFile().isDeclarationFile;
  return global && CONNECTIONS[name]?.includes(undefined) ? name : undefined;
}

/** `this.<field>.set(…)` or `this.<field>[k] = …` somewhere in the class. */
function filledByClass(cls: ts.ClassDeclaration, field: string): boolean {
  let found = false;
  const isField = (e: ts.Expression): boolean => {
    const x = skipOuter(e);
    return ts.isPropertyAccessExpression(x) && x.expression.kind === ts.SyntaxKind.ThisKeyword && x.name.text === field;
  };
  const visit = (n: ts.Node): void => {
    if (found) return;
    if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression) && n.expression.name.text === 'set' && isField(n.expression.expression)) found = true;
    else if (ts.isBinaryExpression(n) && n.operatorToken.kind === ts.SyntaxKind.EqualsToken && ts.isElementAccessExpression(n.left) && isField(n.left.expression)) found = true;
    else ts.forEachChild(n, visit);
  };
  cls.members.forEach(visit);
  return found;
}
