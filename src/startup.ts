// How entry points (the server, the CLIs) fail: a wrong setting or an unreachable server is one
// line on stderr naming it, and exit code 1; only a bug prints a stack.
import { ConfigError } from './config.js';

/** Starting failed for a reason outside the code: a busy port, an unreachable database, ... */
export class StartupError extends Error {
  override name = 'StartupError';
}

export function runMain(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    if (error instanceof ConfigError || error instanceof StartupError)
      console.error(`error: ${error.message}`);
    else console.error(error);
    process.exit(1);
  });
}
