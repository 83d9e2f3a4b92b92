const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * True for a canonical UUID: user ids, session ids (`sid`) and key ids are UUIDs, so anything
 * else can be answered without asking the database (whose uuid cast would reject it).
 */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}
