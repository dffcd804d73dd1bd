import noFrameworkSessionState from '../../src/rules/no-framework-session-state.js';
import { describeRule } from '../helpers/rule-tester.js';

// Cases: fixtures/rules/no-framework-session-state/ (`valid-*` report nothing; `invalid-*` report exactly the `// expect:` lines).
// The frameworks are not installed in this repository: they are recognized from their imports, as in a fresh checkout.
describeRule(noFrameworkSessionState);
