/**
 * The rule registry: an explicit, ordered list (the order of `--help`, docs and SARIF `rules[]`).
 * Adding a rule: `src/rules/<id>.ts`, `fixtures/rules/<id>/`, `test/rules/<id>.test.ts`,
 * `docs/rules/<id>.md`, then list it here.
 */
import type { RuleMeta } from '../analyzer/types.js';
import type { Rule } from './create-rule.js';
import noSessionTransportRegistry from './no-session-transport-registry.js';
import noFrameworkSessionState from './no-framework-session-state.js';
import noSessionKeyedState from './no-session-keyed-state.js';
import noPerSessionClosureState from './no-per-session-closure-state.js';
import noPerSessionTimer from './no-per-session-timer.js';
import noInMemoryTaskStore from './no-in-memory-task-store.js';
import noSessionStateHolder from './no-session-state-holder.js';
import noStatefulSessionIdGenerator from './no-stateful-session-id-generator.js';
import noSseServerTransport from './no-sse-server-transport.js';
import noInMemoryEventStore from './no-in-memory-event-store.js';
import noTransportSessionOverride from './no-transport-session-override.js';
import noGlobalConnectionState from './no-global-connection-state.js';
import serverInitiatedRequest from './server-initiated-request.js';

export const rules: readonly Rule[] = [
  // session-registry
  noSessionTransportRegistry,
  noFrameworkSessionState,
  // session-keyed-state
  noSessionKeyedState,
  noPerSessionClosureState,
  noPerSessionTimer,
  noInMemoryTaskStore,
  noSessionStateHolder,
  // stateful-transport
  noStatefulSessionIdGenerator,
  noSseServerTransport,
  noInMemoryEventStore,
  noTransportSessionOverride,
  // global-connection-state
  noGlobalConnectionState,
  // server-initiated-request (informational)
  serverInitiatedRequest,
];

export const ruleMetas: readonly RuleMeta[] = rules.map((r) => r.meta);
