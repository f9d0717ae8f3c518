// The contract as one document (generated/openapi.yaml, bundled from openapi/ by make gen), read
// once: the validator, /docs and the raw documents all serve this copy.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const SPEC_PATH = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '../generated/openapi.yaml',
);
export const specYaml = readFileSync(SPEC_PATH, 'utf8');
export const spec = parse(specYaml) as Record<string, unknown> & {
  paths: Record<string, Record<string, unknown>>;
  servers: Array<Record<string, unknown>>;
};
