import noSseServerTransport from '../../src/rules/no-sse-server-transport.js';
import { describeRule } from '../helpers/rule-tester.js';

// Cases: fixtures/rules/no-sse-server-transport/ (`valid-*` report nothing; `invalid-*` report exactly the `// expect:` lines).
describeRule(noSseServerTransport);
