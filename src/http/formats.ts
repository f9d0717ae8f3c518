// Formats for express-openapi-validator that accept only what PostgreSQL and JavaScript's Date
// can hold. ajv-formats' own versions are looser: `date-time` takes leap seconds (23:59:60, an
// Invalid Date in JavaScript), `uuid` takes a `urn:uuid:` prefix (refused by PostgreSQL), and years
// 0000 or above 9999 in UTC are out of range for PostgreSQL or for RFC 3339 output.
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^(\d{4}-\d{2}-\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;

/** The earliest and latest instants the API accepts: years 0001 to 9999, in UTC. */
const MIN_INSTANT = new Date('0001-01-01T00:00:00Z').getTime();
const MAX_INSTANT = new Date('9999-12-31T23:59:59.999Z').getTime();

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

/** A calendar date 'YYYY-MM-DD' from 0001-01-01 to 9999-12-31. */
export function isDate(value: string): boolean {
  const match = DATE.exec(value);
  if (!match) return false;
  const [year, month, day] = match.slice(1).map(Number) as [number, number, number];
  return year >= 1 && month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month);
}

/**
 * RFC 3339 with an offset, no leap second, whose instant falls in years 0001 to 9999 (UTC). Any
 * number of fractional digits (RFC 3339 sets no limit): instants are kept to the millisecond.
 */
export function isDateTime(value: string): boolean {
  const match = DATE_TIME.exec(value);
  if (!match || !isDate(match[1]!)) return false;
  const [hour, minute, second] = [match[2], match[3], match[4]].map(Number) as [number, number, number];
  if (hour > 23 || minute > 59 || second > 59) return false;
  if (match[5] !== undefined && (Number(match[5]) > 23 || Number(match[6]) > 59)) return false;
  const instant = new Date(value).getTime();
  return instant >= MIN_INSTANT && instant <= MAX_INSTANT;
}

export const isUuid = (value: string): boolean => UUID.test(value);

/** For the validator's `formats` option: these replace ajv-formats' versions. */
export const strictFormats = {
  uuid: { type: 'string', validate: isUuid },
  date: { type: 'string', validate: isDate },
  'date-time': { type: 'string', validate: isDateTime },
} as const;
