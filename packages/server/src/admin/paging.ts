/** The bounds of one page of an admin listing (users, clients, audit events). */
export const PAGE: Readonly<Record<"defaultLimit" | "maxLimit" | "maxOffset", number>> = {
  defaultLimit: 100,
  maxLimit: 1000,
  maxOffset: 100_000_000,
};

/**
 * A page within bounds. The routes reject out-of-range values with a 400 first; the stores
 * clamp as well because they are also called without the routes (the CLI).
 */
export function clampPage(limit: number, offset: number): { limit: number; offset: number } {
  return { limit: Math.min(Math.max(limit, 1), PAGE.maxLimit), offset: Math.max(offset, 0) };
}
