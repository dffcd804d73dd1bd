import { ts } from 'ts-morph';
import { skipOuter, classNameOf } from '../analyzer/ast.js';
import { IN_MEMORY_TASK_CLASSES } from '../analyzer/sdk-types.js';
import { createRule, type RuleContext } from './create-rule.js';

/** Members of the SDK's `TaskStore` and `TaskMessageQueue` interfaces (experimental tasks, SDK 1.2x+). */
const TASK_STORE_MEMBERS = ['createTask', 'getTask', 'storeTaskResult', 'getTaskResult', 'updateTaskStatus', 'listTasks'];
const TASK_QUEUE_MEMBERS = ['enqueue', 'dequeue', 'dequeueAll'];
const COLLECTION = /^(new (Map|Set|WeakMap|Array)\b|\[|\{)/;
/** Members of the SDK's in-memory classes that the runtime's Redis store and queue also provide (`cleanup`: both stop their timers). */
const RUNTIME_EXTRAS = ['cleanup', 'getAllTasks'];

type Role = 'store' | 'queue';

/**
 * Where a class keeps its data in process memory: the name of the first field initialized (or set in the
 * constructor) to a collection, or undefined when it keeps none.
 */
function memoryField(cls: ts.ClassLikeDeclaration): ts.Identifier | ts.PrivateIdentifier | undefined {
  let found: ts.Identifier | ts.PrivateIdentifier | undefined;
  const visit = (n: ts.Node): void => {
    if (found) return;
    if (ts.isPropertyDeclaration(n) && n.initializer && COLLECTION.test(skipOuter(n.initializer).getText()) && !ts.isComputedPropertyName(n.name)) {
      if (ts.isIdentifier(n.name) || ts.isPrivateIdentifier(n.name)) found = n.name;
    } else if (
      ts.isBinaryExpression(n) &&
      n.operatorToken.kind === ts.SyntaxKind.EqualsToken &&
      ts.isPropertyAccessExpression(n.left) &&
      n.left.expression.kind === ts.SyntaxKind.ThisKeyword &&
      COLLECTION.test(skipOuter(n.right).getText())
    ) {
      found = n.left.name;
    } else ts.forEachChild(n, visit);
  };
  cls.members.forEach(visit);
  return found;
}

/** The SDK interface a class provides, by its declared heritage or structurally (every member of the interface). */
function roleOf(cls: ts.ClassLikeDeclaration, sdkName: string | undefined): Role | undefined {
  if (sdkName === 'TaskStore' || sdkName === 'InMemoryTaskStore') return 'store';
  if (sdkName === 'TaskMessageQueue' || sdkName === 'InMemoryTaskMessageQueue') return 'queue';
  const names = new Set(cls.members.map((m) => (m.name && (ts.isIdentifier(m.name) || ts.isPrivateIdentifier(m.name)) ? m.name.text : '')));
  if (TASK_STORE_MEMBERS.every((m) => names.has(m))) return 'store';
  if (TASK_QUEUE_MEMBERS.every((m) => names.has(m))) return 'queue';
  return undefined;
}

/**
 * Where the instance is kept: the variable, property or field it initializes, else the `new` itself.
 * A field assigned in the class's code (`this.store = new InMemoryTaskStore()` in the constructor) is
 * reported at the field's declaration, where the holder is declared.
 */
function holderOf(ctx: RuleContext, expr: ts.NewExpression): { node: ts.Node; name?: string } {
  let n: ts.Node = expr;
  while (n.parent && (ts.isParenthesizedExpression(n.parent) || ts.isAsExpression(n.parent) || ts.isSatisfiesExpression(n.parent))) n = n.parent;
  const parent = n.parent;
  if (parent && (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) && ts.isIdentifier(parent.name)) {
    return { node: parent.name, name: parent.name.text };
  }
  if (parent && ts.isBinaryExpression(parent) && parent.right === n && ts.isPropertyAccessExpression(parent.left)) {
    const field = parent.left.expression.kind === ts.SyntaxKind.ThisKeyword ? ctx.flow.symbolAt(parent.left.name)?.valueDeclaration : undefined;
    if (field && ts.isPropertyDeclaration(field) && ts.isIdentifier(field.name)) return { node: field.name, name: field.name.text };
    return { node: parent.left.name, name: parent.left.name.text };
  }
  return { node: expr };
}

const memberName = (m: ts.ClassElement): string | undefined => (m.name && (ts.isIdentifier(m.name) || ts.isPrivateIdentifier(m.name)) ? m.name.text : undefined);

/**
 * Methods of the class beyond the SDK interface it provides that the program calls from outside the
 * class (`store.waitForUpdate(id)`, by name: untyped JavaScript receivers). The runtime's Redis store
 * and queue implement the SDK interface only, so replacing the class would drop them.
 */
function extraMethodsUsed(ctx: RuleContext, cls: ts.ClassLikeDeclaration, role: Role): string[] {
  const own = new Set([...(role === 'store' ? TASK_STORE_MEMBERS : TASK_QUEUE_MEMBERS), ...RUNTIME_EXTRAS]);
  const extra = new Set(cls.members.filter((m) => ts.isMethodDeclaration(m) && m.body).map(memberName).filter((n): n is string => !!n && !own.has(n)));
  const used = new Set<string>();
  const visit = (n: ts.Node): void => {
    if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression) && extra.has(n.expression.name.text) && skipOuter(n.expression.expression).kind !== ts.SyntaxKind.ThisKeyword) {
      used.add(n.expression.name.text);
    }
    ts.forEachChild(n, visit);
  };
  for (const sf of ctx.flow.sourceFiles) if (ctx.isAnalyzed(sf)) visit(sf);
  return [...used];
}

/**
 * Methods of the class that keep the resolve function of a promise they create (pass it to a call or
 * store it) instead of calling it: in-process waiters, which only a write in this process wakes.
 */
function inProcessWaiters(cls: ts.ClassLikeDeclaration): string[] {
  const out: string[] = [];
  for (const m of cls.members) {
    const name = memberName(m);
    if (!ts.isMethodDeclaration(m) || !m.body || !name) continue;
    let keeps = false;
    const visit = (n: ts.Node): void => {
      if (keeps) return;
      const arg = ts.isNewExpression(n) && skipOuter(n.expression).getText() === 'Promise' ? n.arguments?.[0] : undefined;
      const executor = arg && (ts.isArrowFunction(arg) || ts.isFunctionExpression(arg)) ? arg : undefined;
      const resolve = executor?.parameters[0]?.name;
      if (executor && resolve && ts.isIdentifier(resolve)) {
        const kept = (k: ts.Node): boolean => (ts.isIdentifier(k) && k.text === resolve.text && isKept(k)) || ts.forEachChild(k, kept) === true;
        if (kept(executor.body)) keeps = true;
      }
      ts.forEachChild(n, visit);
    };
    visit(m.body);
    if (keeps) out.push(name);
  }
  return out;
}

/** `waiters.push(resolve)`, `map.set(id, resolve)`, `this.r = resolve`, `{ resolve }`: the function is kept, not called (nor handed to a timer). */
function isKept(id: ts.Identifier): boolean {
  const p = id.parent;
  if (ts.isCallExpression(p) && p.arguments.includes(id)) return ts.isPropertyAccessExpression(p.expression) && STORE_CALLS.has(p.expression.name.text);
  if (ts.isBinaryExpression(p)) return p.right === id && p.operatorToken.kind === ts.SyntaxKind.EqualsToken;
  return ts.isShorthandPropertyAssignment(p) || (ts.isPropertyAssignment(p) && p.initializer === id);
}
const STORE_CALLS = new Set(['push', 'unshift', 'set', 'add']);

const list = (names: string[]): string => names.map((n) => `\`${n}\``).join(', ');

/** Why no codemod moves the project's own class onto the runtime's store or queue, as exactly as the code shows. */
function whyManual(ctx: RuleContext, c: Candidate): string {
  const reasons: string[] = [];
  if (c.cls) {
    const extra = extraMethodsUsed(ctx, c.cls, c.role);
    const waiters = inProcessWaiters(c.cls);
    if (extra.length) reasons.push(`the program calls ${list(extra)}, which the SDK's \`${c.role === 'store' ? 'TaskStore' : 'TaskMessageQueue'}\` interface (the one the runtime's Redis ${c.role} implements) does not have`);
    if (waiters.length) reasons.push(`${list(waiters)} keeps the resolve function of a promise in this process (an in-process waiter), so a waiter on one replica is never woken by a write on another (a resolve function cannot be stored in Redis)`);
  }
  const because = reasons.length ? ` because ${reasons.join('; and ')}` : '';
  return `\`${c.className}\` is the project's own in-memory implementation, which no codemod moves onto the runtime's Redis task store and queue${because}: rewrite it by hand on a shared store (the runtime's \`createTaskStore()\` / \`createTaskMessageQueue()\` from \`@mcp-migrate/runtime\`${wakeHint(reasons)}), or run \`mcp-migrate proxy --affinity owner\`.`;
}
const wakeHint = (reasons: string[]): string => (reasons.some((r) => r.includes('in-process waiter')) ? ', waking waiters through the store, e.g. Redis pub/sub or polling bounded by the request' : '');

const WHAT: Record<Role, string> = {
  store: 'the tasks it creates (each bound to the session that created it), their status and their results',
  queue: 'the messages queued for each task (the elicitation and sampling requests delivered through `tasks/result`)',
};
const FAILS: Record<Role, string> = {
  store: "the client's `tasks/get`, `tasks/result`, `tasks/list` or `tasks/cancel` reaches a replica whose store has never seen the task, and fails",
  queue: "the client's `tasks/result` reaches a replica whose queue is empty, so the task's queued requests are never delivered",
};

interface Candidate {
  expr: ts.NewExpression;
  role: Role;
  isSdkClass: boolean;
  className: string;
  holder: { node: ts.Node; name?: string };
  /** The project's own class (not the SDK's). */
  cls?: ts.ClassLikeDeclaration;
}

function candidate(ctx: RuleContext, expr: ts.NewExpression): Candidate | undefined {
  const callee = skipOuter(expr.expression);
  const symbol = ctx.flow.symbolAt(ts.isPropertyAccessExpression(callee) ? callee.name : callee);
  const cls = symbol?.declarations?.find((d): d is ts.ClassLikeDeclaration => ts.isClassDeclaration(d) || ts.isClassExpression(d));
  const sdkName = ctx.flow.sdk.sdkNameOfExpression(expr.expression);
  const isSdkClass = !!sdkName && IN_MEMORY_TASK_CLASSES.has(sdkName) && (!cls || !ctx.isAnalyzed(cls.getSourceFile()));
  let role: Role | undefined;
  let field: ts.Identifier | ts.PrivateIdentifier | undefined;
  if (isSdkClass) role = sdkName === 'InMemoryTaskStore' ? 'store' : 'queue';
  else if (cls && ctx.isAnalyzed(cls.getSourceFile())) {
    role = roleOf(cls, sdkName);
    const derived = !!sdkName && IN_MEMORY_TASK_CLASSES.has(sdkName);
    field = derived ? undefined : memoryField(cls);
    if (role && !derived && !field) role = undefined;
  }
  if (!role) return undefined;
  const className = isSdkClass ? sdkName! : (cls ? classNameOf(cls) : 'class');
  // An instance of the project's own implementation with no holder of its own (assigned to a variable
  // declared elsewhere, as a wrapper chosen by a condition): its collection field is where its tasks are.
  const kept = holderOf(ctx, expr);
  const holder = field && !kept.name ? { node: field, name: `${className}.${field.text}` } : kept;
  return { expr, role, isSdkClass, className, holder, cls: isSdkClass ? undefined : cls };
}

/** The object literals (server options) the instance is put in, directly or through its variable. */
function optionLiterals(ctx: RuleContext, c: Candidate): ts.Node[] {
  const out: ts.Node[] = [];
  const holderParent = c.holder.node.parent;
  if (holderParent && ts.isPropertyAssignment(holderParent)) out.push(holderParent.parent);
  const symbol = holderParent && ts.isVariableDeclaration(holderParent) ? ctx.flow.symbolAt(c.holder.node) : undefined;
  if (symbol) {
    const visit = (n: ts.Node): void => {
      if (ts.isShorthandPropertyAssignment(n) && ctx.checker.getShorthandAssignmentValueSymbol(n) === symbol) out.push(n.parent);
      else if (ts.isPropertyAssignment(n) && ts.isIdentifier(n.initializer) && ctx.flow.symbolAt(n.initializer) === symbol) out.push(n.parent);
      ts.forEachChild(n, visit);
    };
    visit(c.holder.node.getSourceFile());
  }
  return out;
}

/**
 * Finds in-memory task stores and task message queues (SDK experimental tasks): the SDK's
 * `InMemoryTaskStore` / `InMemoryTaskMessageQueue`, classes derived from them, and the project's own
 * implementations of `TaskStore` / `TaskMessageQueue` that keep their data in process memory.
 */
export default createRule({
  meta: {
    id: 'no-in-memory-task-store',
    category: 'session-keyed-state',
    severity: 'error',
    description: 'In-memory task store or task message queue (SDK experimental tasks), whose tasks belong to sessions',
    fix: 'transform:task-store',
  },
  create: (ctx) => {
    const found: Candidate[] = [];
    return {
      [ts.SyntaxKind.NewExpression](node: ts.Node) {
        const c = candidate(ctx, node as ts.NewExpression);
        if (c) found.push(c);
      },
      end() {
        // A queue given to the same server as a store is reported with the store (one fix for both).
        const paired = new Map<Candidate, Candidate>();
        for (const queue of found.filter((c) => c.role === 'queue')) {
          const literals = optionLiterals(ctx, queue);
          const store = found.find((c) => c.role === 'store' && optionLiterals(ctx, c).some((l) => literals.includes(l)));
          if (store && store.isSdkClass === queue.isSdkClass) paired.set(queue, store);
        }
        const reported = new Set<ts.Node>();
        for (const c of found) {
          if (paired.has(c) || reported.has(c.holder.node)) continue;
          reported.add(c.holder.node);
          const queue = [...paired].find(([, store]) => store === c)?.[0];
          const name = c.holder.name ?? c.className;
          const what = queue ? `${WHAT.store}, and with \`${queue.holder.name ?? queue.className}\` (a \`${queue.className}\`) ${WHAT.queue},` : WHAT[c.role];
          const todo = c.isSdkClass
            ? "Run `mcp-migrate apply --store redis` to replace it with the runtime's Redis-backed task store and queue, shared by every replica and expiring with each task's TTL."
            : whyManual(ctx, c);
          ctx.report({
            node: c.holder.node,
            symbol: name,
            fix: c.isSdkClass ? 'transform:task-store' : 'manual',
            message: `\`${name}\` is a \`${c.className}\`: ${what} live in this process's memory. ` + `Behind a round-robin load balancer ${FAILS[c.role]}. ` + todo,
          });
        }
      },
    };
  },
});
