/** Parsing of numeric command-line flags (a bad value is a usage error naming the flag). */
import { HorizonError } from '../core/errors.js';

export function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new HorizonError('E_USAGE', `${flag} expects a whole number ≥ 1, got "${value}"`);
  return n;
}

export function nonNegativeInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new HorizonError('E_USAGE', `${flag} expects a whole number ≥ 0, got "${value}"`);
  return n;
}
