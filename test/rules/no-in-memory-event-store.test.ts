import noInMemoryEventStore from '../../src/rules/no-in-memory-event-store.js';
import { describeRule } from '../helpers/rule-tester.js';

// Cases: fixtures/rules/no-in-memory-event-store/ (`valid-*` report nothing; `invalid-*` report exactly the `// expect:` lines).
describeRule(noInMemoryEventStore);
