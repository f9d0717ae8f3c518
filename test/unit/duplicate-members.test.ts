// The scan that names a JSON member given twice in one object (http/duplicate-members.ts).
import { describe, expect, it } from 'vitest';
import { duplicateMember } from '../../src/http/duplicate-members.js';

describe('duplicateMember', () => {
  it('names the member given twice, with its path', () => {
    expect(duplicateMember('{"credits":"1","credits":"1000000"}')).toBe('/credits');
    expect(duplicateMember('{"a":{"b":1},"c":[{"d":1},{"e":1,"e":2}]}')).toBe('/c/1/e');
    // The same name escaped otherwise is the same name; pointer tokens are escaped.
    expect(duplicateMember('{"name":"a","n\\u0061me":"b"}')).toBe('/name');
    expect(duplicateMember('{"x":{"a/b~":1," a/b~":2,"a/b~":3}}')).toBe('/x/a~1b~0');
  });

  it('finds none where names repeat only across objects, or inside strings', () => {
    expect(duplicateMember('{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}')).toBeUndefined();
    expect(duplicateMember('{"a":"\\"a\\": 1, \\"a\\": 2","b":"x\\\\","c":"y"}')).toBeUndefined();
    expect(duplicateMember('[1, "a", {"a": []}, {"a": {}}]')).toBeUndefined();
  });
});
