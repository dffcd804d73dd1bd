import { utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ts } from 'ts-morph';
import { describe, expect, it } from 'vitest';
import { analyzerHost } from '../../src/analyzer/compiler-host.js';
import { tempTrees } from '../helpers/temp-tree.js';

const tree = tempTrees('mcpm-host');

const OPTIONS: ts.CompilerOptions = { allowJs: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, lib: ['lib.es2023.d.ts'], types: [] };

function program(root: string, texts?: Map<string, string>): ts.Program {
  return ts.createProgram({ rootNames: [path.join(root, 'src', 'server.ts')], options: OPTIONS, host: analyzerHost(OPTIONS, texts) });
}

const PACKAGE = {
  'node_modules/dep/package.json': JSON.stringify({ name: 'dep', version: '1.0.0', types: './index.d.ts' }),
  'node_modules/dep/index.d.ts': 'export declare class Transport { sessionId?: string }\n',
  'src/server.ts': "import { Transport } from 'dep';\nexport const transports: Map<string, Transport> = new Map();\nexport const n = [1, 2].at(0);\n",
};

describe('analyzer compiler host', () => {
  it('types a program with the bundled lib files (no TypeScript installation needed)', () => {
    const root = tree(PACKAGE);
    const p = program(root);
    const server = p.getSourceFile(path.join(root, 'src', 'server.ts'))!;
    const n = server.statements[2] as ts.VariableStatement;
    const type = p.getTypeChecker().getTypeAtLocation(n.declarationList.declarations[0]!.name);
    expect(p.getTypeChecker().typeToString(type)).toBe('number | undefined');
    expect(p.getSourceFiles().some((sf) => sf.fileName.endsWith('lib.es2023.d.ts'))).toBe(true);
  });

  it('parses a declaration file under node_modules once for every program of the process', () => {
    const root = tree(PACKAGE);
    const dts = path.join(root, 'node_modules', 'dep', 'index.d.ts');
    const first = program(root);
    const second = program(root);
    expect(first.getSourceFile(dts)).toBeDefined();
    expect(second.getSourceFile(dts)).toBe(first.getSourceFile(dts));
    // The project's own files are parsed per program.
    const server = path.join(root, 'src', 'server.ts');
    expect(second.getSourceFile(server)).not.toBe(first.getSourceFile(server));
  });

  it('parses a declaration file again once it changed on disk', () => {
    const root = tree(PACKAGE);
    const dts = path.join(root, 'node_modules', 'dep', 'index.d.ts');
    const first = program(root).getSourceFile(dts)!;
    writeFileSync(dts, 'export declare class Transport { sessionId?: string; closed: boolean }\n');
    utimesSync(dts, new Date(), new Date(Date.now() + 5_000));
    const second = program(root).getSourceFile(dts)!;
    expect(second).not.toBe(first);
    expect(second.text).toContain('closed');
  });

  it('reads the texts it is given in place of the files on disk', () => {
    const root = tree(PACKAGE);
    const server = path.join(root, 'src', 'server.ts');
    const p = program(root, new Map([[server, 'export const rewritten = true;\n']]));
    expect(p.getSourceFile(server)!.text).toBe('export const rewritten = true;\n');
  });
});
