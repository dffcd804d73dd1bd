/**
 * Covered findings in `apply`: a server with its own in-memory event store class, made by `new` in two
 * files. The class is one finding (fix `transform:event-store`); each `new` is a finding covered by it. The
 * transform gets the class once, and the covered findings are neither rewritten again nor left remaining
 * when it is rewritten; when the class stays (a use the codemod does not rewrite), they remain with it.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { planApply } from '../../src/apply/engine.js';

const STORE = `import { randomUUID } from 'node:crypto';
export class MemoryEventStore {
  constructor() {
    this.events = new Map();
  }
  async storeEvent(streamId, message) {
    const id = streamId + '_' + randomUUID();
    this.events.set(id, { streamId, message });
    return id;
  }
  async replayEventsAfter(lastEventId, { send }) {
    const origin = this.events.get(lastEventId);
    if (!origin) return '';
    for (const [id, e] of this.events) if (id > lastEventId && e.streamId === origin.streamId) await send(id, e.message);
    return origin.streamId;
  }
}
`;

const server = (make: string): string => `import { randomUUID } from 'node:crypto';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { MemoryEventStore } from './store.js';

export function open(onReady) {
  const store =
    ${make};
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), eventStore: store, onsessioninitialized: onReady });
  return transport;
}
`;

let dir: string | undefined;
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

async function plan(make: string) {
  dir = mkdtempSync(path.join(tmpdir(), 'mcp-migrate-covered-'));
  mkdirSync(path.join(dir, 'src'));
  writeFileSync(path.join(dir, 'src/store.js'), STORE);
  writeFileSync(path.join(dir, 'src/a.js'), server(make));
  writeFileSync(path.join(dir, 'src/b.js'), server(make));
  return planApply({ paths: [dir], cwd: dir, store: 'redis', transforms: ['event-store', 'todo-markers'] });
}

describe('apply with covered findings', () => {
  it('hands the class to the event-store transform once and leaves nothing of it remaining', async () => {
    const r = await plan('new MemoryEventStore()');
    const store = r.analysis.findings.filter((f) => f.ruleId === 'no-in-memory-event-store');
    const covered = store.filter((f) => f.coveredBy);
    // The class, its events field, and in each server the \`new\` and the variable keeping it.
    expect(store.filter((f) => !f.coveredBy).map((f) => `${f.file}:${f.line}`)).toEqual(['src/store.js:2']);
    expect(covered.map((f) => `${f.file}:${f.line}:${f.symbol}`).sort()).toEqual([
      'src/a.js:6:store', 'src/a.js:7:new MemoryEventStore', 'src/b.js:6:store', 'src/b.js:7:new MemoryEventStore', 'src/store.js:4:MemoryEventStore.events',
    ]);
    expect(covered.every((f) => f.coveredBy?.line === 2 && f.fix === 'transform:event-store')).toBe(true);
    expect(r.notes.filter((n) => n.transform === 'event-store').map((n) => `${n.kind} ${n.file}:${n.line}`)).toEqual(['changed src/store.js:2']);
    for (const file of ['src/a.js', 'src/b.js']) {
      const after = r.changes.find((c) => c.file === file)!.after;
      expect(after.match(/createEventStore\(\)/g)).toHaveLength(1);
      expect(after).not.toContain('MemoryEventStore');
    }
    expect(r.remaining.filter((f) => f.ruleId === 'no-in-memory-event-store')).toEqual([]);
  });

  it('keeps the covered findings remaining, with their cover named, when the class stays', async () => {
    // An argument the codemod does not carry over: the class is marked, not removed.
    const r = await plan('new MemoryEventStore(1000)');
    const remaining = r.remaining.filter((f) => f.ruleId === 'no-in-memory-event-store');
    expect(remaining.map((f) => f.symbol).sort()).toEqual(['MemoryEventStore', 'MemoryEventStore.events', 'new MemoryEventStore', 'new MemoryEventStore', 'store', 'store']);
    const covered = remaining.filter((f) => f.symbol !== 'MemoryEventStore');
    expect(covered.every((f) => f.why.startsWith('the same state as `MemoryEventStore` (no-in-memory-event-store, src/store.js:'))).toBe(true);
    // One marker, at the class: the covered findings are not marked again.
    const markers = r.changes.flatMap((c) => c.after.match(/@mcp-migrate-todo no-in-memory-event-store/g) ?? []);
    expect(markers).toHaveLength(1);
  });
});
