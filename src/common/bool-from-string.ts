const TRUE_STRINGS = new Set(['1', 't', 'true', 'on', 'y', 'yes']);
const FALSE_STRINGS = new Set(['0', 'f', 'false', 'off', 'n', 'no']);

/** oslo's strutils.bool_from_string: unrecognised strings are false unless strict. */
export function boolFromString(value: string | null | undefined): boolean {
  return value !== null && value !== undefined && TRUE_STRINGS.has(value.trim().toLowerCase());
}

/** Strict variant: null when the string is neither a true nor a false spelling. */
export function strictBoolFromString(value: string): boolean | null {
  const v = value.trim().toLowerCase();
  if (TRUE_STRINGS.has(v)) return true;
  if (FALSE_STRINGS.has(v)) return false;
  return null;
}
