/**
 * The `unit` vitest project (`npm run test:unit`) runs with no Redis and no nginx. The helpers that start
 * them call {@link requireIntegrationProject} first, so a test that needs them but is not listed in the
 * `integration` project (vitest.config.ts) fails at once with a message saying where it belongs.
 */
export function requireIntegrationProject(what: string): void {
  if (process.env.MCP_MIGRATE_TEST_PROJECT === 'unit') {
    throw new Error(`${what} is not available to the unit project: list this test file in INTEGRATION (vitest.config.ts).`);
  }
}
