/**
 * `todo-markers`: runs last, on what the analysis of the rewritten code still finds. Every such finding
 * gets a `/* @mcp-migrate-todo <rule>: … *\/` marker on its own line before the statement that holds the
 * state, with concrete guidance: per-session values that cannot be serialized, per-session closure
 * state, module-level connection state, legacy SSE transports; for rules without general guidance
 * (per-session timers among them) and for the project's own task stores and queues the finding's own
 * message, which gives the exact reason. Never inside a literal, never twice. Informational `server-initiated-request` notes get no marker (the
 * runtime registry routes those requests across replicas).
 */
import { defineTransform } from './define-transform.js';

const GUIDANCE: Record<string, string> = {
  'no-session-keyed-state':
    'per-session values that cannot be serialized (timers, callbacks, sockets) stay on the replica that created them; keep the data that drives them in `createSessionMap(name)` (@mcp-migrate/runtime) and re-create the live object on the replica that serves the session (e.g. restart the interval when the session is restored), or run `mcp-migrate proxy --affinity owner`',
  'no-per-session-closure-state':
    'state captured per session in the server factory is rebuilt only by what replaying `initialize` re-runs; move what tools write into `createSessionMap(name)` keyed by `extra.sessionId`, or run `mcp-migrate proxy --affinity owner`',
  'no-global-connection-state':
    'process state that requests write is shared by every session of this replica and missing on the others; per-session data: key it by session id in `createSessionMap(name)` (@mcp-migrate/runtime) or read it from the request; data every session shares: move it to a store all replicas read; or run `mcp-migrate proxy` (owner routing)',
  'no-sse-server-transport':
    'the legacy HTTP+SSE transport keeps the stream in this process and cannot be restored by replay; serve Streamable HTTP (already migrated in this server if it has one) or run this endpoint behind `mcp-migrate proxy`',
  'no-stateful-session-id-generator':
    'create this transport through a SessionTransportRegistry (@mcp-migrate/runtime, docs/apply.md) so the id can be re-issued on another replica',
  'no-session-transport-registry':
    'replace this registry with `new SessionTransportRegistry()` from @mcp-migrate/runtime and call `prepareNode(req, res)` first in each handler (docs/apply.md)',
  'no-in-memory-event-store': 'pass `createEventStore()` from @mcp-migrate/runtime as the transport\'s `eventStore`',
  'no-framework-session-state':
    'the framework keeps each session in this process and offers no configuration that keeps it elsewhere for this server (the finding says why), and apply cannot edit code in node_modules: run one `mcp-migrate proxy --store redis://… --upstream http://127.0.0.1:<port>/mcp` beside each replica (`--affinity owner` if its tools keep state per session; docs/proxy.md)',
  'no-in-memory-task-store':
    'tasks in this store exist only in this replica; give the server a TaskStore and TaskMessageQueue backed by the shared store (`createTaskStore()` / `createTaskMessageQueue()` from @mcp-migrate/runtime), or run `mcp-migrate proxy --affinity owner`',
  'no-transport-session-override':
    'this hand-made restore forges the transport\'s session state; create transports through a SessionTransportRegistry (@mcp-migrate/runtime), which replays the stored handshake on any replica, and remove this code',
  // no-per-session-timer has no entry on purpose: its marker is the finding's message, which says which timer, where it is kept and why it breaks.
};

export default defineTransform({
  id: 'todo-markers',
  title: 'Markers for what no transform can rewrite',
  fixes: [...Object.keys(GUIDANCE), 'no-per-session-timer'],
  receives: 'all',
  stage: 'migrated',
  run(ctx) {
    for (const f of ctx.findings) {
      if (f.finding.category === 'server-initiated-request') continue;
      // Rules without general guidance (per-session timers among them), and the project's own task stores and
      // queues (which methods and waiters keep them off the runtime's store), carry the exact reason in their message.
      const exact = f.finding.ruleId === 'no-in-memory-task-store' && f.finding.fix === 'manual';
      const guidance = exact ? undefined : GUIDANCE[f.finding.ruleId];
      ctx.todo(f, guidance ? `\`${f.finding.symbol}\`: ${guidance}` : f.finding.message);
    }
  },
});
