/**
 * The transform registry: an explicit, ordered list. `mcp-migrate apply` runs them in this order, each
 * on the text the previous ones left (the analysis itself ran once, before any of them).
 */
import type { Transform } from './define-transform.js';
import eventStore from './event-store.js';
import taskStore from './task-store.js';
import transportRegistry from './transport-registry.js';
import webTransportRegistry from './web-transport-registry.js';
import sessionKeyedMap from './session-keyed-map.js';
import sharedMap from './shared-map.js';
import frameworkSessions from './framework-sessions.js';
import ownerAffinity from './owner-affinity.js';
import todoMarkers from './todo-markers.js';

export const transforms: readonly Transform[] = [
  // First, because its edits sit inside the session-opening code that transport-registry moves into
  // a function: rewritten in place, they move with it (the reverse order would split one edit in two).
  eventStore,
  // Before transport-registry for the same reason: a task store or queue created in the opening code moves with it.
  taskStore,
  // Registries of web-standard transports (hono apps): takes the transport-registry findings whose
  // transport is web-standard, so it runs before transport-registry, which rewrites Node transports.
  webTransportRegistry,
  // The heart of the migration: the registry, the id generator and the session-opening code.
  transportRegistry,
  // Independent of the registry; after it so its summary lines follow the registry's.
  sessionKeyedMap,
  // Process-level maps that requests write (module variables, once-per-process objects, in-memory OAuth
  // providers); independent of the registry, like session-keyed-map.
  sharedMap,
  // A configuration change of a framework that keeps the sessions itself; independent of the others.
  frameworkSessions,
  // On the analysis of the rewritten code (stage `migrated`): owner affinity for the per-session state
  // that stays in process, where a Node registry was written; before todo-markers, which marks the rest.
  ownerAffinity,
  // Last: only what no transform above rewrote gets a marker, so it must see every other result.
  todoMarkers,
];

export type { Transform, TransformContext, LocatedFinding } from './define-transform.js';
