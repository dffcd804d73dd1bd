import { expect, it } from 'vitest';
import noInMemoryEventStore from '../../src/rules/no-in-memory-event-store.js';
import { describeRule, ruleCases, runRule } from '../helpers/rule-tester.js';

// Cases: fixtures/rules/no-in-memory-event-store/ (`valid-*` report nothing; `invalid-*` report exactly the `// expect:` lines).
describeRule(noInMemoryEventStore);

it('names a class expression by the variable it is assigned to (the form bundlers emit), not "class"', async () => {
  const ruleCase = ruleCases('no-in-memory-event-store').find((c) => c.name.startsWith('invalid-class-expression'))!;
  const findings = await runRule(noInMemoryEventStore, ruleCase);
  expect(findings.map((f) => f.symbol)).toContain('ArrayEventStore');
  expect(findings.find((f) => f.symbol === 'ArrayEventStore')!.message).toMatch(/^`ArrayEventStore` (\(made by [^)]*\) )?keeps the SSE events/);
});

it('names where the program makes the store in the class finding, which the event-store transform rewrites with the class', async () => {
  const ruleCase = ruleCases('no-in-memory-event-store').find((c) => c.name.startsWith('invalid-class-expression'))!;
  const findings = await runRule(noInMemoryEventStore, ruleCase);
  expect(findings.find((f) => f.symbol === 'ArrayEventStore')!.message).toContain('(made by `new` at invalid-class-expression.mjs:29)');
});
