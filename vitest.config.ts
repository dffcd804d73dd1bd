import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * Tests that start real processes: `redis-server`, `nginx`, the built CLI, MCP servers (stdio children or
 * HTTP). Everything else is the `unit` project (`npm run test:unit`: in process, no Redis, no nginx, under a
 * minute). `npm test` runs both. The helpers that start Redis or nginx refuse to run in the unit project
 * (`test/helpers/project-guard.ts`), so a misfiled test fails loudly instead of passing slowly.
 *
 * The unit project runs its files in shared workers (`isolate: false`): ts-morph and TypeScript load once
 * per worker, not once per file, and the analyzer's parsed declaration files (compiler-host.ts) serve
 * every fixture of every file. Unit tests therefore must not leave module state behind (no `vi.mock`,
 * fake timers restored, env restored); the integration project keeps one process per file.
 */
const INTEGRATION = [
  'test/integration/**/*.test.ts',
  'test/reliability/**/*.test.ts',
  'test/apply/cli.test.ts',
  'test/cli/analyze.test.ts',
  'test/cli/gate.test.ts',
  'test/cli/help.test.ts',
  'test/gate/action.test.ts',
  'test/proxy/cli.test.ts',
  'test/proxy/cross-replica.test.ts',
  'test/proxy/errors.test.ts',
  'test/proxy/http.test.ts',
  'test/proxy/legacy-sse.test.ts',
  'test/proxy/modern-stdio.test.ts',
  'test/proxy/ops.test.ts',
  'test/proxy/origin.test.ts',
  'test/proxy/owner.test.ts',
  'test/proxy/replicas.test.ts',
  'test/proxy/stdio-get-abort.test.ts',
  'test/proxy/stdio.test.ts',
  'test/runtime/bus.test.ts',
  'test/runtime/kv-store.test.ts',
  'test/runtime/redis-url.test.ts',
  'test/runtime/replica-registry.test.ts',
  'test/runtime/server-requests.test.ts',
  'test/runtime/session-streams.test.ts',
  'test/runtime/store.test.ts',
  'test/runtime/task-store.test.ts',
  'test/runtime/transport-registry.test.ts',
  'test/transforms/typecheck.test.ts',
];

export default defineConfig({
  resolve: {
    // Tests run the runtime from source, as one module instance shared with the proxy and apply code under test.
    alias: { '@mcp-migrate/runtime': fileURLToPath(new URL('./packages/runtime/src/index.ts', import.meta.url)) },
  },
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Integration tests start real redis-server, nginx and MCP servers; two cores are all we have.
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: { name: 'unit', include: ['test/**/*.test.ts'], exclude: INTEGRATION, env: { MCP_MIGRATE_TEST_PROJECT: 'unit' }, isolate: false },
      },
      { extends: true, test: { name: 'integration', include: INTEGRATION } },
    ],
  },
});
