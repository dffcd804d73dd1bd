import serverInitiatedRequest from '../../src/rules/server-initiated-request.js';
import { describeRule } from '../helpers/rule-tester.js';

// Cases: fixtures/rules/server-initiated-request/ (`valid-*` report nothing; `invalid-*` report exactly the `// expect:` lines).
describeRule(serverInitiatedRequest);
