import noPerSessionTimer from '../../src/rules/no-per-session-timer.js';
import { describeRule } from '../helpers/rule-tester.js';

// Cases: fixtures/rules/no-per-session-timer/ (`valid-*` report nothing; `invalid-*` report exactly the `// expect:` lines).
describeRule(noPerSessionTimer);
