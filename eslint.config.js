// Lint for this repository (`npm run lint`, run by `npm test`): typescript-eslint's recommended rules.
// Import cycles are checked by dpdm in the same script. Fixtures are inputs for the analyzer and the
// codemods, written as real servers are; they are not linted.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'packages/*/dist/', 'node_modules/', 'fixtures/', 'coverage/'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      // A `let` read by a closure before its one assignment (timers, late-bound references) stays a `let`.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // Tests read raw JSON-RPC frames and SSE events; typing each assertion path adds nothing.
    files: ['test/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
