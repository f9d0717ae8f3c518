// Runs the real entry points (src/main.ts, make targets) as child processes, for what only a
// process shows: startup failures, signals, draining, exit codes.
//
// Every process starts in a process group of its own, and that whole group (the server, its
// cluster workers, make's children) is killed when the test that started it finishes, passed,
// failed or timed out; processes started outside a test (beforeAll) when the file's tests are
// done; and any still left when the test process exits. A failing test never leaves a server
// running.
import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, onTestFinished } from 'vitest';

export interface Spawned {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of pattern in stdout; rejects if the process exits first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL to the whole process group (it and everything it started); idempotent. */
  killGroup(): void;
}

const live = new Set<Spawned>();

function killAll(): void {
  for (const spawned of live) spawned.killGroup();
}
afterAll(killAll);
process.on('exit', killAll);

export function spawnProcess(
  command: string,
  args: string[],
  env: Record<string, string | undefined>,
): Spawned {
  const child = spawn(command, args, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true, // its own process group, so that killGroup reaches its children too
  });
  let out = '';
  let err = '';
  const listeners = new Set<() => void>();
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    for (const listener of listeners) listener();
  });
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const spawned: Spawned = {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    killGroup: () => {
      live.delete(spawned);
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
      }
    },
    waitFor: (pattern, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(out);
          if (match) done(() => resolve(match));
        };
        const timer = setTimeout(
          () => done(() => reject(new Error(`timed out waiting for ${pattern}: ${out}${err}`))),
          timeoutMs,
        );
        const done = (settle: () => void) => {
          clearTimeout(timer);
          listeners.delete(check);
          settle();
        };
        void exited.then(({ code }) =>
          done(() => reject(new Error(`exited ${code} before ${pattern}: ${out}${err}`))),
        );
        listeners.add(check);
        check();
      }),
  };
  live.add(spawned);
  try {
    onTestFinished(() => spawned.killGroup());
  } catch {
    // Not inside a test (e.g. beforeAll): the file's afterAll kills it.
  }
  return spawned;
}

/** src/main.ts in its own process, with these settings on top of the test's environment. */
export const spawnServer = (env: Record<string, string | undefined>) =>
  spawnProcess(process.execPath, ['--import', 'tsx', 'src/main.ts'], { NODE_ENV: undefined, ...env });

/** Polls check until it returns a value other than undefined (or throws the last error at the deadline). */
export async function waitUntil<T>(
  check: () => Promise<T | undefined> | T | undefined,
  { timeoutMs = 60_000, intervalMs = 100, what = 'a condition' } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let failure: unknown;
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      failure = error;
    }
    if (Date.now() > deadline)
      throw failure instanceof Error
        ? failure
        : new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/** The non-empty lines a process wrote to stderr, without npm's own configuration warnings. */
export const errorLines = (text: string) =>
  text.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('npm warn'));
