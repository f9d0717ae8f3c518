// Writes the list of operations that accept an Idempotency-Key (src/generated/idempotent-writes.ts)
// from the contract (generated/openapi.yaml, the bundle of openapi/), so the client adds a key, and
// retries a write, only where the API honours one. Run by `make gen`; `--check` fails when the
// committed file is out of date.
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

const entries: string[] = [];
/** Writes the API makes idempotent by their body (`x-retry-safe`: usage events, by event_id). */
const retrySafe: string[] = [];
for (const [path, item] of Object.entries(spec.paths)) {
  for (const [method, operation] of Object.entries(item)) {
    if (!['post', 'put', 'patch', 'delete'].includes(method)) continue;
    // The path's end, each {parameter} one segment: the base URL may carry a prefix.
    const pattern = path.replace(/[.*+?^$()|[\]\\/]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+');
    const entry = `  ['${method.toUpperCase()}', /${pattern}$/], // ${operation.operationId}`;
    if (operation['x-retry-safe']) retrySafe.push(entry);
    const takesKey = (operation.parameters ?? [])
      .map(resolve)
      .some((p) => p.in === 'header' && p.name?.toLowerCase() === 'idempotency-key');
    if (takesKey) entries.push(entry);
  }
}

const text = `// Generated from the contract (generated/openapi.yaml) by \`make gen\` (gen/idempotent-writes.ts): do not edit.
// The writes that accept an Idempotency-Key, as [method, a pattern of the URL path's end].
export const IDEMPOTENT_WRITES: ReadonlyArray<readonly [string, RegExp]> = [
${entries.join('\n')}
];

// The writes that are safe to send again without a key: the body itself makes them idempotent.
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
