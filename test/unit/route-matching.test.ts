import { describe, expect, it } from 'vitest';
import { memoizeValidatorRouteMatching, validatorPathToRegexp } from '../../src/http/route-matching.js';

describe("the validator's route matching", () => {
  const memoized = memoizeValidatorRouteMatching();

  it('is installed in the path-to-regexp the validator requires, once', () => {
    expect(validatorPathToRegexp.pathToRegexp).toBe(memoized);
    expect(memoizeValidatorRouteMatching()).toBe(memoized);
  });

  it('compiles a template once and matches as the original does', () => {
    const options = { sensitive: true, strict: false };
    const first = memoized('/api/v1/users/:userId', options) as {
      regexp: RegExp;
      keys: Array<{ name: string }>;
    };
    expect(memoized('/api/v1/users/:userId', { ...options })).toBe(first);
    expect(first.regexp.flags).not.toMatch(/[gy]/);
    expect(first.keys.map((k) => k.name)).toEqual(['userId']);
    expect(first.regexp.exec('/api/v1/users/abc')?.[1]).toBe('abc');
    expect(first.regexp.exec('/API/v1/users/abc')).toBeNull();
    // Other options are another pattern.
    const insensitive = memoized('/api/v1/users/:userId', { sensitive: false, strict: false }) as {
      regexp: RegExp;
    };
    expect(insensitive).not.toBe(first);
    expect(insensitive.regexp.exec('/API/v1/users/abc')?.[1]).toBe('abc');
  });
});
