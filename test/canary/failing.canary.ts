// Fails on purpose. test/canary/run.sh (`make canary`, run by `.ci/run`) checks that the test
// runner exits non-zero on it, and that the processes it started, a child and the child's own
// child, were stopped although the test failed.
import { writeFileSync } from 'node:fs';
import { expect, test } from 'vitest';
import { spawnProcess } from '../helpers/process.js';

const KEEP_ALIVE = 'setInterval(() => {}, 1000)';

test('the canary fails, leaving no process behind', async () => {
  const child = spawnProcess(
    process.execPath,
    [
      '-e',
      `const grandchild = require('node:child_process').spawn(process.execPath, ['-e', '${KEEP_ALIVE}'], { stdio: 'ignore' });
       console.log('pids ' + process.pid + ' ' + grandchild.pid); ${KEEP_ALIVE}`,
    ],
    {},
  );
  const [, pid, grandchildPid] = await child.waitFor(/pids (\d+) (\d+)/);
  if (process.env.CANARY_PIDS) writeFileSync(process.env.CANARY_PIDS, `${pid} ${grandchildPid}\n`);
  expect(1 + 1).toBe(3);
});
