// Hot queries built and compiled once, then run with each call's values: Kysely builds and
// compiles a query (node visits, freezes, SQL text) on every call otherwise, the same text each
// time. Placeholders (slots) stand for the values while it compiles; the compiled query keeps the
// SQL and swaps the slots in its parameters for the call's values. The SQL is exactly what the
// builder makes (db/sql snapshots it), and so are the parameters: the values pass through as is.
import type { Compilable, CompiledQuery, RawBuilder } from 'kysely';
import type { Db } from './connection.js';

/** Stands for the index-th value while the query compiles. */
class Slot {
  constructor(readonly index: number) {}
}

interface Template {
  compiled: CompiledQuery;
  /** For each parameter, the value it takes: the index of a call's value, or a constant. */
  parameters: Array<{ slot: number } | { constant: unknown }>;
}

const templates = new Map<string, Template>();

/** What a query function may build: a Kysely query, or a sql`` template (compiled with the Db). */
type Buildable<Row> = Compilable<Row> | RawBuilder<Row>;

function compileTemplate(
  db: Db,
  name: string,
  count: number,
  build: (...slots: never[]) => Buildable<unknown>,
): Template {
  const slots = Array.from({ length: count }, (_, i) => new Slot(i));
  const built = build(...(slots as never[]));
  const compiled = 'isRawBuilder' in built ? built.compile(db) : built.compile();
  const seen = new Set<number>();
  const parameters = compiled.parameters.map((value) => {
    if (!(value instanceof Slot)) return { constant: value };
    seen.add(value.index);
    return { slot: value.index };
  });
  if (seen.size !== count) throw new Error(`compiled query ${name}: a value did not become a parameter`);
  return { compiled, parameters };
}

/**
 * Runs the query that `build` makes from `values`, compiled once per `name` (a name per shape:
 * the same name must always build the same SQL). `build` receives placeholders, not the values:
 * it may only pass them to Kysely as values (where, values, limit, sql`${...}`), never inspect them.
 */
export async function runCompiled<Row, V extends readonly unknown[]>(
  db: Db,
  name: string,
  values: V,
  build: (...values: V) => Buildable<Row>,
): Promise<Row[]> {
  let template = templates.get(name);
  if (template === undefined) {
    template = compileTemplate(
      db,
      name,
      values.length,
      build as unknown as (...slots: never[]) => Buildable<unknown>,
    );
    templates.set(name, template);
  }
  const query: CompiledQuery<Row> = {
    ...(template.compiled as CompiledQuery<Row>),
    parameters: template.parameters.map((p) => ('slot' in p ? values[p.slot] : p.constant)),
  };
  return (await db.executeQuery(query)).rows;
}
