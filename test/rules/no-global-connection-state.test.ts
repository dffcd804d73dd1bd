import noGlobalConnectionState from '../../src/rules/no-global-connection-state.js';
import { describeRule } from '../helpers/rule-tester.js';

// Cases: fixtures/rules/no-global-connection-state/ (`valid-*` report nothing; `invalid-*` report exactly the `// expect:` lines).
describeRule(noGlobalConnectionState);
