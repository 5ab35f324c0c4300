const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** File ids are UUIDs; anything else names no file, and must not reach a uuid column. */
export function isFileId(value: string): boolean {
  return UUID.test(value);
}
