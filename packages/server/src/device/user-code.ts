import { randomInt } from "node:crypto";

// RFC 8628 §6.1: consonants only (no vowels, so no words; no look-alike digits), easy to type
// on a phone. 20^8 ≈ 2^34.6 codes, against a few hundred guesses before one expires.
const ALPHABET = "BCDFGHJKLMNPQRSTVWXZ";
const LENGTH = 8;

/** A fresh user code, shown as `BCDF-GHJK`. */
export function newUserCode(): string {
  let code = "";
  for (let i = 0; i < LENGTH; i++) code += ALPHABET[randomInt(ALPHABET.length)];
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}

/** What the user typed, as stored: upper case, separators and spaces dropped; undefined if it cannot be a code. */
export function normalizeUserCode(input: string): string | undefined {
  const code = input.toUpperCase().replace(/[\s-]/g, "");
  if (code.length !== LENGTH) return undefined;
  for (const ch of code) if (!ALPHABET.includes(ch)) return undefined;
  return code;
}
