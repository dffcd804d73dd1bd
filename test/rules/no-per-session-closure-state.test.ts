import noPerSessionClosureState from '../../src/rules/no-per-session-closure-state.js';
import { describeRule } from '../helpers/rule-tester.js';

// Cases: fixtures/rules/no-per-session-closure-state/ (`valid-*` report nothing; `invalid-*` report exactly the `// expect:` lines).
describeRule(noPerSessionClosureState);
