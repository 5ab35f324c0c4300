const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Ids of files and deliveries are UUIDs; anything else names nothing, and must not reach a uuid column. */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/**
 * A UUID in the lower case the database returns, or null for anything else. Ids are keys of the
 * status cache and of pub-sub topics, where an upper-case spelling would name nothing.
 */
export function canonicalUuid(value: string): string | null {
  return isUuid(value) ? value.toLowerCase() : null;
}
