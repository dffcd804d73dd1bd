import noSessionKeyedState from '../../src/rules/no-session-keyed-state.js';
import { describeRule } from '../helpers/rule-tester.js';

// Cases: fixtures/rules/no-session-keyed-state/ (`valid-*` report nothing; `invalid-*` report exactly the `// expect:` lines).
describeRule(noSessionKeyedState);
