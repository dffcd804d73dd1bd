import noSessionTransportRegistry from '../../src/rules/no-session-transport-registry.js';
import { describeRule } from '../helpers/rule-tester.js';

// Cases: fixtures/rules/no-session-transport-registry/ (`valid-*` report nothing; `invalid-*` report exactly the `// expect:` lines).
describeRule(noSessionTransportRegistry);
