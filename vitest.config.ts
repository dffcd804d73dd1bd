import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Integration tests start real redis-server, nginx and MCP servers; two cores are all we have.
    maxWorkers: 2,
  },
});
