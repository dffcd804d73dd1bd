import noInMemoryTaskStore from '../../src/rules/no-in-memory-task-store.js';
import { describeRule } from '../helpers/rule-tester.js';

// Cases: fixtures/rules/no-in-memory-task-store/ (`valid-*` report nothing; `invalid-*` report exactly the `// expect:` lines).
describeRule(noInMemoryTaskStore);
