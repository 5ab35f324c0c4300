import { isUuid } from '../uuid.js';
import { clientError } from './errors.js';

/** Where a newest-first page ended: the last row's time and id, which order rows of one time. */
export interface KeysetPosition {
  at: Date;
  id: string;
}

export function encodeCursor({ at, id }: KeysetPosition): string {
  return Buffer.from(JSON.stringify([at.toISOString(), id])).toString('base64url');
}

export function decodeCursor(cursor: string): KeysetPosition {
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string];
    const date = new Date(at);
    // As toISOString wrote it, so within the years PostgreSQL takes: a forged year -1000 failed there.
    if (Number.isNaN(date.getTime()) || date.toISOString() !== at || !/^\d{4}-/.test(at) || !isUuid(id)) throw new Error('bad cursor');
    return { at: date, id };
  } catch {
    throw clientError('BAD_USER_INPUT', 'The cursor "after" is not one this API gave out.');
  }
}

export const DEFAULT_PAGE = 20;
export const MAX_PAGE = 100;

/** A page size argument (`first`, or `argument`) as a page size: between 0 and MAX_PAGE. */
export function pageSize(given: number | null | undefined, argument = 'first'): number {
  const size = given ?? DEFAULT_PAGE;
  if (size < 0 || size > MAX_PAGE) throw clientError('BAD_USER_INPUT', `${argument} must be between 0 and ${MAX_PAGE}.`);
  return size;
}

/** A page of `rows` read with one more than `size`, as the connection it answers. */
export function toConnection<T>(rows: T[], size: number, positionOf: (row: T) => KeysetPosition, hasNextPage = rows.length > size) {
  const edges = rows.slice(0, size).map((node) => ({ cursor: encodeCursor(positionOf(node)), node }));
  return { edges, pageInfo: { hasNextPage, endCursor: edges.at(-1)?.cursor ?? null } };
}
