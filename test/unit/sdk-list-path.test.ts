// The SDK's ListPath (clients/typescript/src/pagination.ts) is exactly the paths whose GET answers a
// page, `{ data: [...], next_cursor }`: the fixture's list is checked here against the contract, and
// the fixture's type-level checks (ListPath equals that list; paths without a GET are refused) are
// compiled with the compiler, as a partner's strict project would.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { LIST_PATHS } from './sdk-list-path.fixture.js';

type Node = Record<string, unknown> & { $ref?: string };
const bundle = parse(readFileSync('generated/openapi.yaml', 'utf8')) as Node;
const deref = (node: unknown): Node | undefined => {
  let at = node as Node | undefined;
  while (at?.$ref)
    at = at.$ref
      .slice(2)
      .split('/')
      .reduce<Node | undefined>((x, k) => x?.[k] as Node | undefined, bundle);
  return at;
};

describe('the SDK’s ListPath', () => {
  it('lists the paths whose GET answers a page, and only those', () => {
    const pages = Object.entries(bundle.paths as Record<string, Node>)
      .filter(([, item]) => {
        const ok = deref((deref(item.get)?.responses as Node | undefined)?.['200']);
        const content = ok?.content as Record<string, { schema?: unknown }> | undefined;
        const properties = deref(content?.['application/json']?.schema)?.properties as Node | undefined;
        return properties?.data !== undefined && properties.next_cursor !== undefined;
      })
      .map(([path]) => path);
    expect([...LIST_PATHS].sort()).toEqual(pages.sort());
  });

  it('is that list as a type: a path without a GET, or whose GET answers no page, does not compile', () => {
    const fixture = fileURLToPath(new URL('./sdk-list-path.fixture.ts', import.meta.url));
    const program = ts.createProgram([fixture], {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      types: ['node'],
    });
    const source = program.getSourceFile(fixture)!;
    const errors = [
      ...program.getSyntacticDiagnostics(source),
      ...program.getSemanticDiagnostics(source),
    ].map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(errors).toEqual([]);
  });
});
