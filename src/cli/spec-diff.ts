// `make spec-diff [BASE=<ref>]`: node --import tsx src/cli/spec-diff.ts [base-ref]
// Compares the contract in the working tree with the contract at a base revision: the one given,
// else the newest release tag (v1.2.3) reachable from HEAD, else HEAD~1 (what CI compares against).
// Both sides are whole documents: the working tree's openapi/openapi.yaml bundled with what it $refs
// (what make gen writes to generated/openapi.yaml); the base's committed generated/openapi.yaml, or,
// at a revision from before the split, its one-file openapi/openapi.yaml. Prints each breaking change
// (`breaking: <location>: <what>`) and the other changes, and exits 1 on a breaking change unless
// info.version announces it (a new major; a new minor while the major is 0). Exits 0 with a message
// when there is nothing to compare against (no parent, a shallow clone, a base without the contract),
// 2 on a usage or git error. Rules: ./spec-diff/compare.ts.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { compareSpecs, isMajorBump, type Change } from './spec-diff/compare.js';

/** The hand-written contract: one file before the split, the root of the split files since. */
const SPEC = 'openapi/openapi.yaml';
/** Its bundle, committed since the split (make gen). */
const BUNDLE = 'generated/openapi.yaml';
const USAGE = 'usage: spec-diff [base-ref]   (default: the newest v* tag reachable from HEAD, else HEAD~1)';

const execFileAsync = promisify(execFile);

class UsageError extends Error {}

async function git(cwd: string, args: string[]): Promise<string> {
  const { stdout } = await execFileAsync('git', args, {
    cwd,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  return stdout;
}

/** git's trimmed output, or undefined when it fails. */
async function tryGit(cwd: string, args: string[]): Promise<string | undefined> {
  try {
    return (await git(cwd, args)).trim();
  } catch {
    return undefined;
  }
}

function parseSpec(text: string, where: string): unknown {
  try {
    return parse(text);
  } catch (error) {
    throw new UsageError(`${where} is not valid YAML: ${(error as Error).message}`);
  }
}

/** Whether a document $refs another file, so that it is only part of the contract. */
function refsOtherFiles(node: unknown): boolean {
  if (Array.isArray(node)) return node.some(refsOtherFiles);
  if (node === null || typeof node !== 'object') return false;
  return Object.entries(node).some(([key, value]) =>
    key === '$ref' ? typeof value === 'string' && !value.startsWith('#') : refsOtherFiles(value),
  );
}

/** The working tree's contract as one document: its root file, bundled when it $refs others. */
async function workingTreeSpec(root: string): Promise<unknown> {
  const file = path.join(root, SPEC);
  const text = await readFile(file, 'utf8').catch(() => {
    throw new UsageError(`${file} cannot be read`);
  });
  const spec = parseSpec(text, SPEC);
  if (!refsOtherFiles(spec)) return spec;
  // make gen's bundler (a devDependency, resolved only here: a one-file contract needs none).
  const redocly = createRequire(import.meta.url).resolve('@redocly/cli/bin/cli.js');
  const env = { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' };
  const bundled = await execFileAsync(process.execPath, [redocly, 'bundle', SPEC], {
    cwd: root,
    env,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  }).catch((error: Error & { stderr?: string }) => {
    throw new UsageError(`${SPEC} cannot be bundled (redocly bundle):\n${error.stderr || error.message}`);
  });
  return parseSpec(bundled.stdout, `the bundle of ${SPEC}`);
}

function versionOf(spec: unknown): string {
  const info = (spec as { info?: { version?: unknown } } | null)?.info;
  return typeof info?.version === 'string' ? info.version : '(none)';
}

/**
 * Non-breaking changes, one line each, except that one change repeated in several operations (a
 * property added to a shared schema, say) is one line naming how many.
 */
function briefly(changes: Change[]): string[] {
  const groups = new Map<string, { detail: string; message: string; operations: string[] }>();
  for (const c of changes) {
    const [, operation, detail] = /^([A-Z]+ \S+) (.+)$/.exec(c.location) ?? [];
    const key = operation && detail ? `${detail}\n${c.message}` : `${c.location}\n${c.message}`;
    const group = groups.get(key) ?? { detail: detail ?? c.location, message: c.message, operations: [] };
    if (operation) group.operations.push(operation);
    groups.set(key, group);
  }
  return [...groups.values()].map(({ detail, message, operations }) => {
    if (operations.length === 0) return `${detail}: ${message}`;
    if (operations.length === 1) return `${operations[0]} ${detail}: ${message}`;
    const named = operations.slice(0, 2).join(', ');
    const more = operations.length > 2 ? ` and ${operations.length - 2} more` : '';
    return `${detail} (${operations.length} operations: ${named}${more}): ${message}`;
  });
}

async function main(args: string[]): Promise<number> {
  if (args.includes('-h') || args.includes('--help')) {
    console.log(USAGE);
    return 0;
  }
  if (args.length > 1 || args.some((a) => a.startsWith('-'))) throw new UsageError(USAGE);

  const root = await tryGit(process.cwd(), ['rev-parse', '--show-toplevel']);
  if (root === undefined) throw new UsageError('not inside a git repository');
  const after = await workingTreeSpec(root);

  let base = args[0];
  let why: string;
  if (base !== undefined) {
    if ((await tryGit(root, ['rev-parse', '--verify', '--quiet', `${base}^{commit}`])) === undefined)
      throw new UsageError(`${base} is not a revision of this repository`);
    why = 'given';
  } else {
    const tag = await tryGit(root, ['describe', '--tags', '--abbrev=0', '--match', 'v[0-9]*']);
    if (tag) {
      base = tag;
      why = 'the newest release tag reachable from HEAD';
    } else if ((await tryGit(root, ['rev-parse', '--verify', '--quiet', 'HEAD~1^{commit}'])) !== undefined) {
      base = 'HEAD~1';
      why = "HEAD's parent: there is no release tag";
    } else if ((await tryGit(root, ['rev-parse', '--is-shallow-repository'])) === 'true') {
      console.log(
        "spec-diff: skipped: this clone is shallow and has neither a release tag nor HEAD's parent; fetch the history (git fetch --unshallow) to compare",
      );
      return 0;
    } else {
      console.log(
        'spec-diff: skipped: there is no release tag (v*) and HEAD has no parent: nothing to compare against',
      );
      return 0;
    }
  }

  const exists = async (file: string) =>
    (await tryGit(root, ['cat-file', '-e', `${base}:${file}`])) !== undefined;
  const baseFile = (await exists(BUNDLE)) ? BUNDLE : (await exists(SPEC)) ? SPEC : undefined;
  if (baseFile === undefined) {
    console.log(`spec-diff: skipped: ${base} has no ${SPEC}: nothing to compare against`);
    return 0;
  }
  const before = parseSpec(await git(root, ['show', `${base}:${baseFile}`]), `${base}:${baseFile}`);
  if (refsOtherFiles(before))
    throw new UsageError(`${base}:${baseFile} $refs other files, and ${base} has no ${BUNDLE} to compare`);

  const changes = compareSpecs(before, after);
  const breaking = changes.filter((c) => c.severity === 'breaking');
  const others = changes.filter((c) => c.severity !== 'breaking');
  const [from, to] = [versionOf(before), versionOf(after)];
  console.log(
    `spec-diff: ${SPEC}, working tree against ${base}:${baseFile} (${why}); info.version ${from} -> ${to}`,
  );
  for (const c of breaking) console.log(`breaking: ${c.location}: ${c.message}`);
  for (const line of briefly(others)) console.log(`non-breaking: ${line}`);
  console.log(`${breaking.length} breaking, ${others.length} non-breaking change(s)`);
  if (breaking.length === 0) return 0;
  if (isMajorBump(from, to)) {
    console.log(`breaking changes allowed: info.version ${from} -> ${to} is a major change`);
    return 0;
  }
  console.error(
    `spec-diff: ${breaking.length} breaking change(s) without a major version: if they are meant, raise info.version's major (its minor while the major is 0; now ${to})`,
  );
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(`spec-diff: ${error instanceof Error ? error.message : String(error)}`);
    process.exitCode = 2;
  },
);
