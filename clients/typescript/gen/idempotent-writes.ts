// Writes the list of operations that accept an Idempotency-Key (src/generated/idempotent-writes.ts)
// from the contract (generated/openapi.yaml, the bundle of openapi/), so the client adds a key, and
// retries a write, only where the API honours one; and the writes safe to send again without one.
// Run by `make gen`; `--check` fails when the committed file is out of date.
import { readFileSync, writeFileSync } from 'node:fs';
import { parse } from 'yaml';

type Parameter = { $ref?: string; name?: string; in?: string };
type Operation = { operationId: string; parameters?: Parameter[]; 'x-retry-safe'?: boolean };
type Spec = {
  paths: Record<string, Record<string, Operation>>;
  components: { parameters: Record<string, Parameter> };
};

const SPEC = new URL('../../../generated/openapi.yaml', import.meta.url);
const OUT = new URL('../src/generated/idempotent-writes.ts', import.meta.url);

const spec = parse(readFileSync(SPEC, 'utf8')) as Spec;
const resolve = (p: Parameter): Parameter =>
  p.$ref ? (spec.components.parameters[p.$ref.split('/').pop()!] ?? p) : p;

/**
 * POSTs that write nothing: they answer what a change would do (a preview, a quote). Safe to send
 * again, but they take no key and the contract does not mark them `x-retry-safe` yet; named here,
 * by operationId, and checked to exist so that a rename fails this script instead of dropping them.
 */
const READ_ONLY_POSTS = new Set(['previewSubscriptionChange', 'quotePlan']);

const entries: string[] = [];
/**
 * Writes safe to send again without a key: those the API makes idempotent by their body
 * (`x-retry-safe`: usage events, by event_id), DELETEs that take no key (idempotent by HTTP's
 * definition: deleting again changes nothing), and the read-only POSTs above.
 */
const retrySafe: string[] = [];
const seen = new Set<string>();
for (const [path, item] of Object.entries(spec.paths)) {
  for (const [method, operation] of Object.entries(item)) {
    if (!['post', 'put', 'patch', 'delete'].includes(method)) continue;
    // The path's end, each {parameter} one segment: the base URL may carry a prefix.
    const pattern = path.replace(/[.*+?^$()|[\]\\/]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+');
    const entry = `  ['${method.toUpperCase()}', /${pattern}$/], // ${operation.operationId}`;
    seen.add(operation.operationId);
    const takesKey = (operation.parameters ?? [])
      .map(resolve)
      .some((p) => p.in === 'header' && p.name?.toLowerCase() === 'idempotency-key');
    if (takesKey) entries.push(entry);
    const readOnlyPost = method === 'post' && READ_ONLY_POSTS.has(operation.operationId);
    if (operation['x-retry-safe'] || (!takesKey && (method === 'delete' || readOnlyPost)))
      retrySafe.push(entry);
  }
}

for (const id of READ_ONLY_POSTS)
  if (!seen.has(id)) throw new Error(`gen/idempotent-writes.ts: no operation ${id} in the contract`);

const text = `// Generated from the contract (generated/openapi.yaml) by \`make gen\` (gen/idempotent-writes.ts): do not edit.
// The writes that accept an Idempotency-Key, as [method, a pattern of the URL path's end].
export const IDEMPOTENT_WRITES: ReadonlyArray<readonly [string, RegExp]> = [
${entries.join('\n')}
];

// The writes that are safe to send again without a key: idempotent by their body (x-retry-safe),
// DELETEs (deleting again changes nothing), and POSTs that write nothing (a preview, a quote).
export const RETRY_SAFE_WRITES: ReadonlyArray<readonly [string, RegExp]> = [
${retrySafe.join('\n')}
];
`;

if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(OUT, 'utf8');
  } catch {
    // missing: out of date
  }
  if (current !== text) {
    console.error(`${OUT.pathname} is out of date with generated/openapi.yaml: run make gen`);
    process.exit(1);
  }
} else {
  writeFileSync(OUT, text);
}
