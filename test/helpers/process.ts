// Runs the real entry points (src/main.ts, make targets) as child processes, for what only a
// process shows: startup failures, signals, draining, exit codes.
import { type ChildProcess, spawn } from 'node:child_process';

export interface Spawned {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match of pattern in stdout; rejects if the process exits first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnProcess(
  command: string,
  args: string[],
  env: Record<string, string | undefined>,
): Spawned {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
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
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited,
    waitFor: (pattern, timeoutMs = 30_000) =>
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
}

/** src/main.ts in its own process, with these settings on top of the test's environment. */
export const spawnServer = (env: Record<string, string | undefined>) =>
  spawnProcess(process.execPath, ['--import', 'tsx', 'src/main.ts'], { NODE_ENV: undefined, ...env });

/** The non-empty lines a process wrote to stderr, without npm's own configuration warnings. */
export const errorLines = (text: string) =>
  text.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('npm warn'));
