import { createRule } from './create-rule.js';
import { classNameOf } from '../analyzer/ast.js';

const KIND_TEXT = { map: 'Map', set: 'Set', weakmap: 'WeakMap', object: 'object', array: 'array', cache: 'in-memory cache', store: 'store' } as const;

/** Finds application data held in process and keyed by session id. */
export default createRule({
  meta: {
    id: 'no-session-keyed-state',
    category: 'session-keyed-state',
    severity: 'error',
    description: 'Application data held in process, keyed by session id',
    fix: 'transform:session-keyed-map',
  },
  create: (ctx) => ({
    end() {
      for (const c of ctx.containers()) {
        if (c.isRegistry) continue;
        const what = c.objectClass
          ? `a ${KIND_TEXT[c.kind]} of the \`${classNameOf(c.objectClass)}\` objects created once per session`
          : c.idSet
            ? `a ${c.kind === 'set' ? 'Set' : `${KIND_TEXT[c.kind]} of sets`} of session ids`
            : c.entriesCarrySession
              ? `a ${KIND_TEXT[c.kind]} whose entries each belong to one session (they carry its session id)`
              : c.handleKey
                ? `a ${KIND_TEXT[c.kind]} keyed by a function that each session's code makes for itself (\`${c.handleKey.getText()}\`), so each entry belongs to one session`
                : `a ${KIND_TEXT[c.kind]} keyed by session id`;
        const todo = c.handleKey
          ? 'A function cannot be a key in a shared store, so no codemod can move it: key the data by session id in a shared store and keep the function on the replica that serves the session, or run `mcp-migrate proxy --affinity owner`.'
          : c.serializable
          ? 'Run `mcp-migrate apply --store redis` to move it to a store-backed session map (shared by every replica, expiring with the session).'
          : 'Its values cannot be serialized (timers, functions, sockets or class instances), so no codemod can move it: keep the data in a shared store and re-create the live objects on the replica that serves the session, or run `mcp-migrate proxy --affinity owner`.';
        ctx.report({
          node: c.node,
          symbol: c.name,
          fix: c.serializable ? 'transform:session-keyed-map' : 'manual',
          message:
            `\`${c.name}\` is ${what}, held in this process's memory. ` +
            'Behind a round-robin load balancer each replica sees a different part of it: a session\'s later requests land on replicas where its entry is missing, and entries of sessions that moved are never cleaned up. ' +
            todo,
        });
      }
    },
  }),
});
