/**
 * Owner affinity's pieces on their own: which runtime registries a migrated file constructs and the edit
 * that gives a Node one `{ affinity: 'owner' }` (`transforms/support/registry-affinity.ts`), and the
 * data-flow check that a session-keyed container is only used by key (`src/apply/owner-affinity.ts`).
 */
import { Project, SyntaxKind } from 'ts-morph';
import { describe, expect, it } from 'vitest';
import { applyEdits } from '../../src/apply/edits.js';
import { onlyKeyedAccess } from '../../src/apply/owner-affinity.js';
import { ownerAffinityEdit, runtimeQuote, runtimeRegistries } from '../../transforms/support/registry-affinity.js';

const file = (text: string, name = 'server.ts') => new Project({ useInMemoryFileSystem: true, compilerOptions: { allowJs: true } }).createSourceFile(name, text);

/** The file's text with every runtime registry given owner affinity. */
function withOwner(text: string): string {
  const sf = file(text);
  const edits = runtimeRegistries(sf).flatMap((r) => {
    const e = ownerAffinityEdit(r, runtimeQuote(sf));
    return e ? [{ start: e[0], end: e[1], text: e[2] }] : [];
  });
  return applyEdits(text, edits);
}

describe('registry affinity edit', () => {
  it('adds the options to each Node registry, after an entry registry\'s transportOf, into an existing options object', () => {
    const imp = "import { SessionEntryRegistry, SessionTransportRegistry as Reg } from '@mcp-migrate/runtime';\n";
    expect(withOwner(`${imp}const a = new Reg<T>();\nconst b = new SessionEntryRegistry((e: E) => e.transport).opener(open);\nconst c = new Reg({ kind: 'node' });\nconst d = new Reg({});`)).toBe(
      `${imp}const a = new Reg<T>({ affinity: 'owner' });\nconst b = new SessionEntryRegistry((e: E) => e.transport, { affinity: 'owner' }).opener(open);\nconst c = new Reg({ kind: 'node', affinity: 'owner' });\nconst d = new Reg({ affinity: 'owner' });`,
    );
  });

  it('leaves web registries, opaque options, registries already owner, and classes not from the runtime', () => {
    const text = `import { SessionTransportRegistry } from "@mcp-migrate/runtime";\nimport { SessionEntryRegistry } from './mine.js';\nconst w = new SessionTransportRegistry({ kind: 'web' });\nconst o = new SessionTransportRegistry(opts);\nconst x = new SessionTransportRegistry({ affinity: "owner" });\nconst m = new SessionEntryRegistry((e) => e.t);`;
    expect(withOwner(text)).toBe(text);
    expect(runtimeRegistries(file(text)).map((r) => [r.kind, r.owner, r.opaque])).toEqual([['web', false, false], ['node', false, true], ['node', true, false]]);
  });

  it('uses the quote of the file\'s runtime import', () => {
    expect(withOwner(`import { SessionTransportRegistry } from "@mcp-migrate/runtime";\nconst a = new SessionTransportRegistry();`)).toContain(`new SessionTransportRegistry({ affinity: "owner" })`);
  });
});

describe('onlyKeyedAccess', () => {
  const declName = (text: string, name: string, fileName = 'server.ts') =>
    file(text, fileName).getDescendantsOfKind(SyntaxKind.Identifier).find((i) => i.getText() === name)!;

  it('holds when every use is get/set/has/delete with a key, through this.x too and its constructor initialization in JavaScript', () => {
    const fn = 'const m = new Map();\nexport function a(id: string) { m.set(id, setInterval(() => {}, 1)); clearInterval(m.get(id)); m.delete(id); return m.has(id); }\n';
    expect(onlyKeyedAccess(declName(`${fn}const server = { registerTool(_n: string, _f: Function) {} };\nserver.registerTool('t', (_a: unknown, extra: { sessionId: string }) => a(extra.sessionId));`, 'm'))).toBe(true);
    const cls = 'class C {\n  constructor() { this.m = new Map(); }\n  a(id) { this.m.get(id).push(1); }\n}\nconst c = new C();\nconst server = { registerTool(_n, _f) {} };\n';
    expect(onlyKeyedAccess(declName(`${cls}server.registerTool('t', (_a, extra) => c.a(extra.sessionId));`, 'm', 'c.js'))).toBe(true);
    // The same method, also called from a route nothing forwards to the session's owner.
    expect(onlyKeyedAccess(declName(`${cls}server.registerTool('t', (_a, extra) => c.a(extra.sessionId));\nconst app = { get(_p, _f) {} };\napp.get('/x', (req) => c.a(req.query.id));`, 'm', 'c.js'))).toBe(false);
    // Never called: not proved to run for a session.
    expect(onlyKeyedAccess(declName(cls, 'm', 'c.js'))).toBe(false);
  });

  it('holds in MCP handlers and in routes the registry guards; fails in another HTTP route or at module level', () => {
    const head = "const m = new Map();\nconst reg = { prepareNode: async (_q: unknown, _s: unknown) => true };\nconst app = { get(_p: string, _f: Function) {}, post(_p: string, _f: Function) {} };\nconst server = { registerTool(_n: string, _f: Function) {} };\n";
    const tool = "server.registerTool('t', (_a: unknown, extra: { sessionId: string }) => m.get(extra.sessionId));\n";
    expect(onlyKeyedAccess(declName(head + tool, 'm'))).toBe(true);
    expect(onlyKeyedAccess(declName(head + tool + "app.post('/mcp', async (req: any, res: any) => { if (!(await reg.prepareNode(req, res))) return; m.delete(req.headers['mcp-session-id']); });", 'm'))).toBe(true);
    expect(onlyKeyedAccess(declName(head + tool + "app.get('/done', (req: any) => { m.get(req.query.id)?.resolve(); });", 'm'))).toBe(false);
    expect(onlyKeyedAccess(declName(head + tool + "m.set('boot', 1);", 'm'))).toBe(false);
  });

  it('fails on iteration, size, clear, a hand-off or a key-less call', () => {
    for (const use of ['for (const v of m.values()) v;', 'm.size;', 'm.clear();', 'f(m);', 'm.forEach(() => {});', '[...m];']) {
      expect(onlyKeyedAccess(declName(`const m = new Map();\nm.set('a', 1);\nexport function f(x?: unknown) { return x; }\n${use}`, 'm')), use).toBe(false);
    }
  });
});
