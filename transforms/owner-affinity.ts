/**
 * `owner-affinity`: runs after the analysis of the migrated code (not in the first pass: it needs to
 * know what remains), on every finding that still breaks round-robin. When the migrated code has a Node
 * runtime registry (`transport-registry`'s output) and at least one remaining finding is state owner
 * affinity makes correct (`src/apply/owner-affinity.ts`: per-session timers, closures, session-keyed
 * live values), it:
 *
 * 1. gives every Node registry `{ affinity: 'owner' }` (`support/registry-affinity.ts`): the replica
 *    that opened a session serves all its requests, the others forward them there;
 * 2. marks each such finding with the informational `@mcp-migrate-owner <rule>:` comment (replacing an
 *    `@mcp-migrate-todo` for the same rule an earlier transform left), and reports it as `owned`.
 *
 * Everything else is left to `todo-markers`. Web-standard registries (a Worker cannot be addressed per
 * instance) and registries whose options are not an object literal are not changed, and then nothing is
 * owned. Idempotent: a registry that already says `affinity: 'owner'` and a marked finding are left as they are.
 */
import { indentOf } from '../src/apply/edits.js';
import { ownerResolvable } from '../src/apply/owner-affinity.js';
import { hasOwnerMarker, ownerComment, todoAnchor, todoRange } from '../src/apply/todo.js';
import { defineTransform } from './define-transform.js';
import { ownerAffinityEdit, runtimeQuote, runtimeRegistries } from './support/registry-affinity.js';

export default defineTransform({
  id: 'owner-affinity',
  title: 'Owner affinity for state that stays in process per session',
  fixes: ['no-per-session-timer', 'no-per-session-closure-state', 'no-session-keyed-state'],
  receives: 'all',
  stage: 'migrated',
  run(ctx) {
    const registries = ctx.project.getSourceFiles().flatMap((sf) => runtimeRegistries(sf).map((reg) => ({ sf, reg })));
    const node = registries.filter(({ reg }) => reg.kind === 'node' && !reg.opaque);
    if (node.length === 0) return;
    const owned = ctx.findings.flatMap((lf) => {
      const what = lf.finding.category === 'server-initiated-request' ? undefined : ownerResolvable(lf);
      return what ? [{ lf, what }] : [];
    });
    if (owned.length === 0) return;
    for (const { sf, reg } of node) {
      const edit = ownerAffinityEdit(reg, runtimeQuote(sf));
      if (edit) ctx.replace(sf, ...edit);
    }
    for (const { lf, what } of owned) {
      const anchor = todoAnchor(lf.node);
      const ruleId = lf.finding.ruleId;
      if (!hasOwnerMarker(anchor, ruleId)) {
        const todo = todoRange(anchor, ruleId);
        if (todo) ctx.replace(lf.sourceFile, todo[0], todo[1], ownerComment(ruleId, what));
        else ctx.insert(lf.sourceFile, anchor.getStart(), ownerComment(ruleId, what) + '\n' + indentOf(lf.sourceFile.getFullText(), anchor.getStart()));
      }
      ctx.owned(lf, what);
    }
  },
});
