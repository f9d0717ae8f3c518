// Types of format.js, for the tests that import it (the dashboard itself is plain JavaScript).
export function formatMoney(amount: string, currency?: string): string;
export function trimAmount(amount: string): string;
export function formatCount(count: number | string): string;
export function pageCurrency(search: string): string | undefined;
export function monthsBefore(month: string, n: number): string;
export function firstDayAfter(month: string): string;
