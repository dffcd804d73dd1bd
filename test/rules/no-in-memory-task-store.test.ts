import { expect, it } from 'vitest';
import noInMemoryTaskStore from '../../src/rules/no-in-memory-task-store.js';
import { describeRule, ruleCases, runRule } from '../helpers/rule-tester.js';

// Cases: fixtures/rules/no-in-memory-task-store/ (`valid-*` report nothing; `invalid-*` report exactly the `// expect:` lines).
describeRule(noInMemoryTaskStore);

it("says exactly why the project's own store and queue are not rewritten: methods beyond the SDK interface the program calls, in-process waiters", async () => {
  const ruleCase = ruleCases('no-in-memory-task-store').find((c) => c.name.startsWith('invalid-own-with-waiters'))!;
  const findings = await runRule(noInMemoryTaskStore, ruleCase);
  const store = findings.find((f) => f.symbol === 'tasks')!.message;
  const queue = findings.find((f) => f.symbol === 'messages')!.message;
  expect(store).toMatch(/the program calls `waitForChange`, which the SDK's `TaskStore` interface .* does not have/);
  expect(store).toMatch(/`waitForChange` keeps the resolve function of a promise in this process/);
  // A timer's resolve (`pause`) is neither a waiter nor, called only inside the class, a method the program needs.
  expect(store).not.toMatch(/pause/);
  expect(queue).toMatch(/the program calls `enqueueWithCallback`, which the SDK's `TaskMessageQueue` interface/);
  expect(queue).not.toMatch(/in-process waiter/);
});
