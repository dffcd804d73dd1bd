/**
 * Owner affinity's pieces on their own: which runtime registries a migrated file constructs and the edit
 * that gives a Node one `{ affinity: 'owner' }` (`transforms/support/registry-affinity.ts`), and the
 * data-flow check that a session-keyed container is only used by key (`src/apply/owner-affinity.ts`).
 */
import { Project, SyntaxKind } from 'ts-morph';
import { describe, expect, it } from 'vitest';
import { applyEdits } from '../../src/apply/edits.js';
import { onlyKeyedAccess } from '../../src/apply/owner-affinity.js';
import { sessionRouteOf } from '../../src/apply/session-routes.js';
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

describe('onlyKeyedAccess: sweeps, element access, shutdown hooks', () => {
  const declName = (text: string, name: string) => file(text).getDescendantsOfKind(SyntaxKind.Identifier).find((i) => i.getText() === name)!;
  const head = "const server = { registerTool(_n: string, _f: Function) {} };\n";
  const tool = (body: string) => `server.registerTool('t', (_a: unknown, extra: { sessionId: string }) => { const id = extra.sessionId; ${body} });\n`;

  it('accepts a sweep that iterates the map and deletes by the key it iterated', () => {
    const map = `${head}const m = new Map();\n${tool('m.set(id, { at: Date.now(), done: () => {} });')}`;
    expect(onlyKeyedAccess(declName(`${map}function sweep() { for (const [k, v] of m.entries()) if (v.at < 0) m.delete(k); }\nsetInterval(sweep, 1000);`, 'm'))).toBe(true);
    expect(onlyKeyedAccess(declName(`${map}setInterval(() => { for (const [k, v] of m) if (v.at < 0) m.delete(k); }, 1000);`, 'm'))).toBe(true);
    expect(onlyKeyedAccess(declName(`${map}setInterval(() => { for (const k of m.keys()) m.delete(k); }, 1000);`, 'm'))).toBe(true);
  });

  it('refuses the same loop where a request runs it (a purge route reaches only the replica it landed on) or a function also called elsewhere', () => {
    const map = `${head}const m = new Map();\n${tool('m.set(id, { at: Date.now() });')}`;
    expect(onlyKeyedAccess(declName(`${map}const app = { post(_p: string, _f: Function) {} };\napp.post('/purge', () => { for (const [k] of m) m.delete(k); });`, 'm'))).toBe(false);
    expect(onlyKeyedAccess(declName(`${map}function sweep() { for (const [k] of m) m.delete(k); }\nsetInterval(sweep, 1000);\nsweep();`, 'm'))).toBe(false);
  });

  it('refuses a sweep that deletes another key, reads another entry, or hands the values on', () => {
    const map = `${head}const m = new Map();\n${tool('m.set(id, { at: Date.now() });')}let other = '';\n`;
    for (const loop of ['for (const [k] of m) m.delete(other);', 'for (const [k] of m) m.get(other);', 'for (const [k, v] of m.entries()) { m.delete(k); } m.clear();', 'for (const v of m.values()) v;', 'const all = [...m.entries()];']) {
      expect(onlyKeyedAccess(declName(`${map}setInterval(() => { ${loop} }, 1000);`, 'm')), loop).toBe(false);
    }
  });

  it('counts element access with a computed key on a plain object as keyed, not a literal key or Object.keys', () => {
    const obj = `${head}const o: Record<string, { send: () => void }> = {};\n${tool('o[id] = { send: () => {} }; o[id].send(); delete o[id];')}`;
    expect(onlyKeyedAccess(declName(obj, 'o'))).toBe(true);
    for (const use of ["o['boot'] = { send: () => {} };", 'o[0];', 'Object.keys(o);', 'o[String(Date.now())] = { send: () => {} };']) {
      expect(onlyKeyedAccess(declName(`${obj}${use}`, 'o')), use).toBe(false);
    }
  });

  it('accepts keyed uses in a process shutdown hook; not in another process event or a non-process emitter', () => {
    const obj = `${head}const o: Record<string, number> = {};\n${tool('o[id] = 1;')}const ids: string[] = [];\n`;
    expect(onlyKeyedAccess(declName(`${obj}process.on('SIGINT', async () => { for (const id of ids) delete o[id]; process.exit(0); });`, 'o'))).toBe(true);
    expect(onlyKeyedAccess(declName(`${obj}process.once('SIGTERM', () => { for (const id of ids) delete o[id]; });`, 'o'))).toBe(true);
    expect(onlyKeyedAccess(declName(`${obj}process.on('message', (id: string) => { delete o[id]; });`, 'o'))).toBe(false);
    expect(onlyKeyedAccess(declName(`${obj}const bus = { on(_e: string, _f: Function) {} };\nbus.on('SIGINT', (id: string) => { delete o[id]; });`, 'o'))).toBe(false);
  });
});

describe('sessionRouteOf (routes that act for one session, by data flow)', () => {
  const head = "import { SessionTransportRegistry } from '@mcp-migrate/runtime';\nconst reg = new SessionTransportRegistry();\nconst app = { get(..._a: unknown[]) {}, post(..._a: unknown[]) {} };\nconst server = { setRequestHandler(_s: unknown, _f: Function) {} };\n";
  /** The locator of the route registered by the first call whose path is `path` and method `method`. */
  const locatorOf = (text: string, method: string, path: string): string | undefined => {
    const sf = file(head + text);
    const call = sf.getDescendantsOfKind(SyntaxKind.CallExpression).find((c) => c.getExpression().getText() === `app.${method}` && c.getArguments()[0]?.getText() === `'${path}'`)!;
    return sessionRouteOf(call.getArguments().at(-1)!)?.locator;
  };
  const tool = (url: string) => `server.setRequestHandler(S, async (_r: unknown, extra: { sessionId: string }) => { const sid = extra.sessionId; return \`${url}\`; });\n`;

  it('a GET route on the path of a URL that carries extra.sessionId in its query, reading that parameter', () => {
    expect(locatorOf(tool('${base}/done?session=${sid}&x=1') + "app.get('/done', (req: any) => req.query.session);", 'get', '/done')).toBe("{ query: 'session' }");
    expect(locatorOf(tool('http://localhost:3000/done?session=${sid}') + "app.get('/done', (req: any) => { const { session } = req.query; return session; });", 'get', '/done')).toBe("{ query: 'session' }");
  });

  it('a POST route reading the field that the GET page fills from that parameter and posts back', () => {
    const page = "app.get('/done', (req: any, res: any) => { const s = req.query.session; res.send(`<form method=\"POST\" action=\"/done\"><input type=\"hidden\" name=\"sid\" value=\"${s}\"></form>`); });\n";
    expect(locatorOf(tool('${base}/done?session=${sid}') + page + "app.post('/done', (req: any) => req.body.sid);", 'post', '/done')).toBe("{ body: 'sid' }");
    // The POST reads another field: not proved.
    expect(locatorOf(tool('${base}/done?session=${sid}') + page + "app.post('/done', (req: any) => req.body.other);", 'post', '/done')).toBeUndefined();
  });

  it('follows the session id through a function parameter every call passes it to, and the Mcp-Session-Id header', () => {
    const send = "function ask(id: string) { return `${base}/form?s=${id}`; }\nserver.setRequestHandler(S, async (_r: unknown, extra: { sessionId: string }) => ask(extra.sessionId));\napp.get('/mcp', (req: any) => ask(req.headers['mcp-session-id']));\n";
    expect(locatorOf(send + "app.get('/form', (req: any) => req.query.s);", 'get', '/form')).toBe("{ query: 's' }");
    expect(locatorOf(send + "ask('fixed');\napp.get('/form', (req: any) => req.query.s);", 'get', '/form')).toBeUndefined();
  });

  it('not a route on another path, a session id in the path, a tool argument, or a file without a runtime registry', () => {
    expect(locatorOf(tool('${base}/done?session=${sid}') + "app.get('/other', (req: any) => req.query.session);", 'get', '/other')).toBeUndefined();
    expect(locatorOf(tool('${base}/done/${sid}') + "app.get('/done', (req: any) => req.query.session);", 'get', '/done')).toBeUndefined();
    expect(locatorOf("server.setRequestHandler(S, async (r: { sessionId: string }, _extra: unknown) => `${base}/done?session=${r.sessionId}`);\napp.get('/done', (req: any) => req.query.session);", 'get', '/done')).toBeUndefined();
    const sf = file("const app = { get(..._a: unknown[]) {} };\nconst server = { setRequestHandler(_s: unknown, _f: Function) {} };\n" + tool('${base}/done?session=${sid}') + "app.get('/done', (req: any) => req.query.session);");
    const call = sf.getDescendantsOfKind(SyntaxKind.CallExpression).find((c) => c.getExpression().getText() === 'app.get')!;
    expect(sessionRouteOf(call.getArguments().at(-1)!)).toBeUndefined();
  });
});
