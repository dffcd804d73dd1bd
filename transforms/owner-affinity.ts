/**
 * `owner-affinity`: runs after the analysis of the migrated code (not in the first pass: it needs to
 * know what remains), on every finding that still breaks round-robin. When the migrated code has a Node
 * runtime registry (`transport-registry`'s output) and at least one remaining finding is state owner
 * affinity makes correct (`src/apply/owner-affinity.ts`: per-session timers, closures, session-keyed
 * live values), it:
 *
 * 1. gives every Node registry `{ affinity: 'owner' }` (`support/registry-affinity.ts`): the replica
 *    that opened a session serves all its requests, the others forward them there;
 * 2. puts the registry's `ownerRoute(locator)` middleware first in each HTTP route that reaches such
 *    state for one session, found by data flow (`src/apply/session-routes.ts`: the route's path is that of
 *    a URL an MCP handler gives out with the session id in its query, and it reads that parameter or the
 *    form field its page posts back): the route then runs on the session's owner too (a route registered
 *    above the registry's declaration gets `(req, res, next) => registry.ownerRoute(…)(req, res, next)`,
 *    which reaches the registry per request, after module evaluation initialized it);
 * 3. marks each such finding with the informational `@mcp-migrate-owner <rule>:` comment (replacing an
 *    `@mcp-migrate-todo` for the same rule an earlier transform left), and reports it as `owned`.
 *
 * Everything else is left to `todo-markers`. Web-standard registries (a Worker cannot be addressed per
 * instance) and registries whose options are not an object literal are not changed, and then nothing is
 * owned. Idempotent: a registry that already says `affinity: 'owner'` and a marked finding are left as they are.
 */
import { indentOf } from '../src/apply/edits.js';
import { ownerResolvable } from '../src/apply/owner-affinity.js';
import { OWNER_ROUTE_METHOD, type SessionRoute } from '../src/apply/session-routes.js';
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
    const routes: SessionRoute[] = [];
    const owned = ctx.findings.flatMap((lf) => {
      const reached: SessionRoute[] = [];
      const what = lf.finding.category === 'server-initiated-request' ? undefined : ownerResolvable(lf, reached);
      if (what) routes.push(...reached.filter((r) => !routes.some((o) => o.call === r.call)));
      return what ? [{ lf, what }] : [];
    });
    if (owned.length === 0) return;
    for (const { sf, reg } of node) {
      const edit = ownerAffinityEdit(reg, runtimeQuote(sf));
      if (edit) ctx.replace(sf, ...edit);
    }
    for (const r of routes) {
      // Before the route's first handler (and its body parsers): the middleware reads the raw body.
      // A route registered above the registry's declaration runs before it is initialized: reach it per request.
      const first = r.call.getArguments()[1];
      const early = node.some(({ sf, reg }) => sf === r.call.getSourceFile() && reg.node.getStart() > r.call.getStart());
      const mw = `${r.registry}.${OWNER_ROUTE_METHOD}(${r.locator})`;
      if (first) ctx.insert(r.call.getSourceFile(), first.getStart(), early ? `(req, res, next) => ${mw}(req, res, next), ` : `${mw}, `);
    }
    for (const { lf, what } of owned) {
      const anchor = todoAnchor(lf.node);
      const ruleId = lf.finding.ruleId;
      const todo = todoRange(anchor, ruleId);
      if (!hasOwnerMarker(anchor, ruleId)) {
        if (todo) ctx.replace(lf.sourceFile, todo[0], todo[1], ownerComment(ruleId, what));
        else ctx.insert(lf.sourceFile, anchor.getStart(), ownerComment(ruleId, what) + '\n' + indentOf(lf.sourceFile.getFullText(), anchor.getStart()));
      } else if (todo) {
        // A run on migrated code: the rewrite pass marked the finding again; the owner marker already says what holds.
        const after = /^\r?\n[ \t]*/.exec(lf.sourceFile.getFullText().slice(todo[1]))?.[0] ?? '';
        ctx.replace(lf.sourceFile, todo[0], todo[1] + after.length, '');
      }
      ctx.owned(lf, what);
    }
  },
});
