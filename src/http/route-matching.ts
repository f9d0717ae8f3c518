// express-openapi-validator (5.x) finds a request's operation by compiling, on every request, the
// path pattern of each route it tries (path-to-regexp's pathToRegexp) until one matches: dozens of
// compilations per request for the same few dozen templates. Its patterns never change, so this
// makes the copy of path-to-regexp it requires return the compiled pattern of a template it has
// seen, instead of compiling it again. The result is the same object each time: a RegExp without
// global or sticky flags (exec keeps no state) and its keys, which the validator only reads.
// Express' router is not affected: it compiles its routes once, through match(), and calls the
// module's own pathToRegexp, not this export. Tested in test/unit/route-matching.test.ts.
import { createRequire } from 'node:module';

type PathToRegexp = (path: unknown, options?: Record<string, unknown>) => unknown;

const require = createRequire(import.meta.url);
/** The path-to-regexp module the validator requires (resolved from the validator's own folder). */
export const validatorPathToRegexp = createRequire(require.resolve('express-openapi-validator'))(
  'path-to-regexp',
) as { pathToRegexp: PathToRegexp & { memoized?: true } };

/** At most this many templates are kept (the contract has under a hundred paths). */
const MAX_ENTRIES = 1000;

/** Installs the memo once per process; returns the installed function. */
export function memoizeValidatorRouteMatching(): PathToRegexp {
  const original = validatorPathToRegexp.pathToRegexp;
  if (original.memoized) return original;
  const compiled = new Map<string, unknown>();
  const memoized = Object.assign(
    (path: unknown, options: Record<string, unknown> = {}): unknown => {
      const keys = Object.keys(options);
      // Only the calls the validator makes: a string template with sensitive and strict.
      if (typeof path !== 'string' || keys.some((k) => k !== 'sensitive' && k !== 'strict')) {
        return original(path, options);
      }
      const key = `${options.sensitive === true ? 'S' : 's'}${options.strict === true ? 'T' : 't'}${path}`;
      let result = compiled.get(key);
      if (result === undefined) {
        result = original(path, options);
        if (compiled.size < MAX_ENTRIES) compiled.set(key, result);
      }
      return result;
    },
    { memoized: true as const },
  );
  validatorPathToRegexp.pathToRegexp = memoized;
  return memoized;
}
