/**
 * Integration-test harness. Import from here:
 *
 *   import { startRedis, startNginx, startEverythingHttp, runScenarios, stopAllProcesses } from '../helpers/index.js';
 *
 * See README.md in this folder for what each piece guarantees.
 */
export * from './protocol.js';
export * from './ports.js';
export * from './processes.js';
export * from './redis.js';
export * from './redis-cluster.js';
export * from './nginx.js';
export * from './everything.js';
export * from './scenario.js';
export * from './proxy.js';
export * from './proxy-cluster.js';
export * from './migrated.js';
export * from './sdk-examples.js';
export * from './client-sessions.js';
export * from './process-state-server.js';
export * from './redis-parts.js';
export * from './replica-clients.js';
export * from './stuck-listener.js';
export * from './runtime-replicas.js';
