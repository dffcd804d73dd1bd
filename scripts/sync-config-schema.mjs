// Writes the `rules` part of schema/config.schema.json from the rule registry (the built
// dist/src/rules/index.js), so the shipped schema lists exactly the registered rules, in registry order,
// with their descriptions and default severities. Run after `npm run build`: `npm run schema`.
// test/gate/config.test.ts fails when the schema and the registry disagree.
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('../schema/config.schema.json', import.meta.url);
const { ruleMetas } = await import('../dist/src/rules/index.js');
const schema = JSON.parse(readFileSync(file, 'utf8'));
schema.properties.rules.properties = Object.fromEntries(
  ruleMetas.map((r) => [r.id, { description: `${r.description} (default: ${r.severity})`, enum: ['off', 'error', 'warning', 'note'] }]),
);
writeFileSync(file, JSON.stringify(schema, null, 2) + '\n');
console.log(`schema/config.schema.json: ${ruleMetas.length} rules`);
