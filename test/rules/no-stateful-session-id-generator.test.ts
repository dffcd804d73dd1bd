import noStatefulSessionIdGenerator from '../../src/rules/no-stateful-session-id-generator.js';
import { describeRule } from '../helpers/rule-tester.js';

// Cases: fixtures/rules/no-stateful-session-id-generator/ (`valid-*` report nothing; `invalid-*` report exactly the `// expect:` lines).
describeRule(noStatefulSessionIdGenerator);
