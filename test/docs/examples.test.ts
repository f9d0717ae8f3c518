// Every walkthrough of the docs is a script in docs/examples/; this runs each one end to end, as a
// reader would (bash, curl, jq), against this file's server on a real port with the background
// worker running, as `make start` does (webhook URLs on this machine allowed).
//
// Each script runs twice: on a fresh tenant, where its output (ids and the run's suffix normalized)
// must equal the output the docs show (docs/examples/output/, which RECORD_EXAMPLES=1 rewrites:
// `make docs`), then again on the same tenant, now full of its own data, where it must succeed.
// The docs must show each example exactly as it is (src/cli/docs.ts, also run by make check).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { docsState, exampleScripts, outputFile } from '../../src/cli/docs.js';
import { silentLogger } from '../../src/logger.js';
import { type RunningWorker, startWorker } from '../../src/worker.js';
import { PLATFORM_KEY, useTestApp } from '../helpers/app.js';
import { spawnProcess } from '../helpers/process.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const RECORD = process.env.RECORD_EXAMPLES === '1';

const ctx = useTestApp({ webhooks: { allowPrivateUrls: true } });
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

/** What varies from run to run, replaced by a name for it. */
const normalize = (output: string, run: string) => output.replaceAll(run, '<run>').replace(UUID, '<uuid>');

async function runScript(script: string, key: string, run: string) {
  const child = spawnProcess('bash', [path.join(ROOT, script)], {
    BASE: await ctx.baseUrl(),
    KEY: key,
    PLATFORM_ADMIN_KEY: PLATFORM_KEY,
    RUN: run,
  });
  const closed = once(child.child, 'close');
  // 'close', not 'exit': only then has all of its output been read.
  const [code] = (await closed) as [number | null];
  return { code, stdout: child.stdout(), stderr: child.stderr() };
}

interface Outcome {
  first: Awaited<ReturnType<typeof runScript>>;
  again?: Awaited<ReturnType<typeof runScript>>;
  run: string;
}

/** Both runs of one script: on a fresh tenant, then again on it. */
async function runTwice(script: string): Promise<Outcome> {
  const tenant = await ctx.newTenant();
  const run = `r${randomBytes(4).toString('hex')}`;
  const first = await runScript(script, tenant.key, run);
  if (first.code !== 0) return { first, run };
  return { first, again: await runScript(script, tenant.key, `${run}x`), run };
}

// The scripts mostly wait (for the server, the worker, a receiver): a few run at once.
const CONCURRENCY = 4;

describe('the examples of the docs (docs/examples/)', () => {
  let worker: RunningWorker | undefined;
  const outcomes = new Map<string, Outcome>();

  beforeAll(async () => {
    for (const tool of ['jq', 'curl'])
      if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0)
        throw new Error(
          `the examples of the docs need ${tool}: apt-get install -y jq curl (or brew install jq)`,
        );
    worker = await startWorker(ctx.url, silentLogger(), {
      jobs: { inProcess: true, timeoutSeconds: 60, pollSeconds: 1, settlementDelayScale: 1 },
      webhooks: { allowPrivateUrls: true, timeoutSeconds: 5, retryBaseSeconds: 1, retryForSeconds: 60 },
      pollSeconds: 0.5,
      dbPoolSize: 2,
    });
    const queue = exampleScripts(ROOT);
    const runner = async () => {
      for (let script = queue.shift(); script; script = queue.shift())
        outcomes.set(script, await runTwice(script));
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, runner));
  });
  afterAll(async () => {
    await worker?.stop(1000);
  });

  it('are shown on the pages exactly as the files are', () => {
    const state = docsState(ROOT);
    expect(state.problems, state.problems.join('\n')).toEqual([]);
    // While recording, the pages are rewritten afterwards (make docs); otherwise they must be current.
    if (!RECORD) expect(state.stale, 'run make docs').toEqual([]);
  });

  for (const script of exampleScripts(ROOT)) {
    it(`${path.basename(script)} runs as shown on a fresh tenant, and again on a tenant with data`, () => {
      const { first, again, run } = outcomes.get(script)!;
      expect(first.code, `${script} failed:\n${first.stdout}\n${first.stderr}`).toBe(0);
      const output = normalize(first.stdout, run);
      const recorded = path.join(ROOT, outputFile(script));
      if (RECORD) {
        mkdirSync(path.dirname(recorded), { recursive: true });
        writeFileSync(recorded, output);
      } else {
        expect(existsSync(recorded), `${recorded} is missing: run make docs`).toBe(true);
        const shown = readFileSync(recorded, 'utf8');
        expect(output, `${script} printed something else than the docs show: run make docs`).toBe(shown);
      }
      expect(again?.code, `${script} failed on a tenant with data:\n${again?.stdout}\n${again?.stderr}`).toBe(
        0,
      );
    });
  }
});
