// Request facts as every caller codec builds them: the codec reads its own fields (output
// limit, choices, stream, tools); the input estimate is the same rule for every format.
import { CHARS_PER_TOKEN } from '../routing/estimate.ts';
import type { RequestFacts } from './codec.ts';

/** What a caller codec read from its body; everything but the input estimate. */
export type ReadFacts = Omit<RequestFacts, 'inputTokens'>;

/**
 * The facts with the input estimate (characters / CHARS_PER_TOKEN of the body's JSON).
 * Serialising a long prompt costs real time, and only budgets, tpm limits and the
 * "cheapest" order read the estimate: it is computed on first use, once.
 */
export function withInputEstimate<F extends Omit<ReadFacts, 'stream' | 'tools'> & Partial<ReadFacts>>(
  body: unknown,
  read: F,
): F & { readonly inputTokens: number } {
  return new EstimatedFacts(body, read) as unknown as F & { readonly inputTokens: number };
}

/**
 * One object of fixed shape per request: an object literal with the getter, given the read
 * fields by Object.assign, took ~700 B per request (heap profile, docs/bench/findings.md).
 * A field the codec did not read is left out, as it was (`declare`: no own property until set).
 */
class EstimatedFacts {
  readonly #body: unknown;
  #inputTokens: number | undefined;
  readonly choices: number;
  readonly producesOutput: boolean;
  declare readonly requestedMaxOutput?: number;
  declare readonly stream?: boolean;
  declare readonly tools?: boolean;

  constructor(body: unknown, read: Omit<ReadFacts, 'stream' | 'tools'> & Partial<ReadFacts>) {
    this.#body = body;
    this.choices = read.choices;
    this.producesOutput = read.producesOutput;
    if (read.requestedMaxOutput !== undefined) this.requestedMaxOutput = read.requestedMaxOutput;
    if (read.stream !== undefined) this.stream = read.stream;
    if (read.tools !== undefined) this.tools = read.tools;
  }

  get inputTokens(): number {
    this.#inputTokens ??= Math.ceil(safeJson(this.#body).length / CHARS_PER_TOKEN);
    return this.#inputTokens;
  }
}

/** A positive integer, or undefined (nonsense limits are ignored, not trusted). */
export function positiveInt(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : undefined;
}

function safeJson(body: unknown): string {
  try {
    return JSON.stringify(body) ?? '';
  } catch {
    return '';
  }
}
