/**
 * `mcp-migrate/runtime`: a re-export of `@mcp-migrate/runtime` (`packages/runtime/`), the session runtime
 * shared by `mcp-migrate proxy` and by the code `mcp-migrate apply` generates. Migrated servers depend on
 * `@mcp-migrate/runtime` alone (ioredis is its only dependency); this entry stays for code that imports the
 * runtime through the CLI package. See `docs/runtime.md`.
 */
export * from '@mcp-migrate/runtime';
