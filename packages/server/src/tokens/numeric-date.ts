/**
 * A JWT NumericDate (RFC 7519 §2): whole seconds since the epoch, rounded down, as `iat`, `exp`
 * and introspection answers carry them.
 */
export function numericDate(d: Date): number {
  return Math.floor(d.getTime() / 1000);
}
