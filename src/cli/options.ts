import { InvalidArgumentError } from 'commander';
import { PROVIDERS, type Provider } from '../infer/messages.js';

/** Option parsers shared by the subcommands; each throws commander's InvalidArgumentError. */

export function parseProviders(value: string): Provider[] {
  const list = value.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const p of list) {
    if (!(PROVIDERS as readonly string[]).includes(p)) throw new InvalidArgumentError(`unknown provider '${p}' (known: ${PROVIDERS.join(', ')})`);
  }
  if (list.length === 0) throw new InvalidArgumentError('at least one provider');
  return list as Provider[];
}

export function parseNumberList(count: number) {
  return (value: string): number[] => {
    const parts = value.split(',').map((s) => Number(s.trim()));
    if (parts.length !== count || parts.some((n) => !Number.isFinite(n))) {
      throw new InvalidArgumentError(`expected ${count} comma-separated numbers, got '${value}'`);
    }
    return parts;
  };
}

export function parseNumber(min: number, max: number, integer = false) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      throw new InvalidArgumentError(`expected ${integer ? 'an integer' : 'a number'} in [${min}, ${max}], got '${value}'`);
    }
    return n;
  };
}

export function parseChoice<T extends string>(choices: readonly T[]) {
  return (value: string): T => {
    if (!(choices as readonly string[]).includes(value)) throw new InvalidArgumentError(`expected one of ${choices.join(', ')}`);
    return value as T;
  };
}
