import noSessionStateHolder from '../../src/rules/no-session-state-holder.js';
import { describeRule } from '../helpers/rule-tester.js';

// Cases: fixtures/rules/no-session-state-holder/ (`valid-*` report nothing; `invalid-*` report exactly the `// expect:` lines).
describeRule(noSessionStateHolder);
