import noTransportSessionOverride from '../../src/rules/no-transport-session-override.js';
import { describeRule } from '../helpers/rule-tester.js';

// Cases: fixtures/rules/no-transport-session-override/ (`valid-*` report nothing; `invalid-*` report exactly the `// expect:` lines).
describeRule(noTransportSessionOverride);
