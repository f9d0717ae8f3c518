// docs/clients.md promises partners (and the generators they use) an example of every request body
// and of every success response that has a body; Redocly (make lint) checks each against its schema.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

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

/** An example on the media type, or on the schema it names. */
const hasExample = (media: Node) => {
  const schema = deref(media.schema);
  return [media.example, media.examples, schema?.example, schema?.examples].some((e) => e !== undefined);
};

describe('the examples of the contract', () => {
  it('cover every request body and every success response body, in each media type', () => {
    const missing: string[] = [];
    for (const item of Object.values(bundle.paths as Record<string, Node>))
      for (const method of ['get', 'put', 'post', 'patch', 'delete']) {
        const op = item[method] as Node | undefined;
        if (!op) continue;
        const id = op.operationId as string;
        const request = deref(op.requestBody)?.content as Record<string, Node> | undefined;
        for (const [type, media] of Object.entries(request ?? {}))
          if (!hasExample(media)) missing.push(`${id} request ${type}`);
        for (const [status, response] of Object.entries(op.responses as Record<string, Node>)) {
          if (!status.startsWith('2')) continue;
          const content = deref(response)?.content as Record<string, Node> | undefined;
          for (const [type, media] of Object.entries(content ?? {}))
            if (!hasExample(media)) missing.push(`${id} ${status} ${type}`);
        }
      }
    expect(missing).toEqual([]);
  });
});
