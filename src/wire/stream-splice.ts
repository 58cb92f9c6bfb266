// Splicing a second upstream's stream into a caller's stream that another upstream began:
// what was delivered (Transcript), and how each canonical chunk of the next attempt is
// adapted (Splice) so the caller sees one answer: one id, one role chunk, no text twice.
// Pure: no I/O, canonical (OpenAI Chat) chunks in and out.
import type { Usage } from '../core/types.ts';
import { isJsonObject, type JsonObject } from '../core/json.ts';
import { prefillText } from './prefill.ts';

/** What of the answer has reached the caller. */
export class Transcript {
  /** Choice 0's text so far. */
  text = '';
  /** Tool-call deltas were delivered: a continuation could not be proven exact. */
  toolCalls = false;
  /** Content events delivered (about one token each). */
  tokens = 0;
  /** The first chunk's id: continuations keep it. */
  id: string | undefined;

  record(chunks: readonly JsonObject[]): void {
    for (const chunk of chunks) {
      if (this.id === undefined && typeof chunk['id'] === 'string' && chunk['id'] !== '') this.id = chunk['id'];
      const parts = partsOf(chunk);
      if (parts.text !== '' || parts.toolCalls) this.tokens++;
      this.text += parts.text;
      if (parts.toolCalls) this.toolCalls = true;
    }
  }
}

/** How the next attempt's stream relates to what was delivered. */
export type SpliceMode =
  /** It was sent the delivered text as prefill: its output is the rest of the answer. */
  | 'continue'
  /** It was asked for the whole answer again: its text must begin with exactly what was delivered. */
  | 'restart';

export type Spliced = { kind: 'chunks'; chunks: JsonObject[] } | { kind: 'diverged'; reason: string };

/**
 * How much of a continuation is read before it is trusted: a target that was sent the
 * delivered text as prefill but answers anew (it does not really take prefill) starts with the
 * answer's own beginning. That is checked on up to this many characters.
 */
export const FRESH_ANSWER_PROBE = 32;
/** Delivered text shorter than this is too short to tell a fresh answer from a continuation. */
const MIN_PROBE = 8;

export class Splice {
  #mode: SpliceMode;
  readonly #id: string | undefined;
  readonly #delivered: string;
  /** continue: the first chunks are held until they show whether this is really a continuation. */
  #probing: boolean;
  readonly #probed: JsonObject[] = [];
  #probeText = '';
  /** restart: delivered text its answer has not matched yet; continue: whitespace held back from the prefill. */
  #pending: string;

  /** Usage reported by the attempts whose text was delivered before this one: the caller's usage covers the whole answer. */
  readonly #earlier: Usage | undefined;

  constructor(mode: SpliceMode, delivered: Transcript, earlierUsage?: Usage) {
    this.#mode = mode;
    this.#id = delivered.id;
    this.#earlier = earlierUsage;
    this.#delivered = delivered.text;
    this.#pending = mode === 'restart' ? delivered.text : delivered.text.slice(prefillText(delivered.text).length);
    this.#probing = mode === 'continue' && prefillText(delivered.text).length >= MIN_PROBE;
  }

  /** How the attempt carries the answer on: a continuation found to answer anew is verified as a restart. */
  get mode(): SpliceMode {
    return this.#mode;
  }

  /** The restart's answer has matched everything delivered (continuations need no proof). */
  get verified(): boolean {
    return this.#mode === 'continue' || this.#pending === '';
  }

  accept(chunks: readonly JsonObject[]): Spliced {
    if (this.#probing) {
      this.#probed.push(...chunks);
      this.#probeText += chunks.map((c) => partsOf(c).text).join('');
      const need = Math.min(prefillText(this.#delivered).length, FRESH_ANSWER_PROBE);
      const settled = chunks.some((c) => partsOf(c).toolCalls || isJsonObject(c['usage']) || finishOf(c) !== undefined);
      if (this.#probeText.length < need && !settled) return { kind: 'chunks', chunks: [] };
      this.#probing = false;
      // It begins with what the caller already read: an answer from the start, not a continuation.
      if (this.#probeText.startsWith(this.#delivered.slice(0, need))) {
        this.#mode = 'restart';
        this.#pending = this.#delivered;
      }
      return this.#adaptAll(this.#probed.splice(0));
    }
    return this.#adaptAll(chunks);
  }

  #adaptAll(chunks: readonly JsonObject[]): Spliced {
    const out: JsonObject[] = [];
    for (const chunk of chunks) {
      const adapted = this.#adapt(chunk);
      if (adapted.kind === 'diverged') return adapted;
      if (adapted.chunk) out.push(adapted.chunk);
    }
    return { kind: 'chunks', chunks: out };
  }

  #adapt(chunk: JsonObject): { kind: 'chunk'; chunk: JsonObject | undefined } | { kind: 'diverged'; reason: string } {
    const choices = Array.isArray(chunk['choices']) ? (chunk['choices'] as unknown[]) : [];
    const choice = choices.find((c): c is JsonObject => isJsonObject(c) && (c['index'] ?? 0) === 0);
    const out: JsonObject = { ...chunk };
    if (this.#id !== undefined && typeof chunk['id'] === 'string') out['id'] = this.#id;
    if (this.#earlier && isJsonObject(chunk['usage'])) out['usage'] = withEarlierUsage(chunk['usage'], this.#earlier);
    if (!choice) return { kind: 'chunk', chunk: out };
    const textKey = isJsonObject(choice['delta']) ? 'delta' : 'text';
    const delta: JsonObject = textKey === 'delta' ? { ...(choice['delta'] as JsonObject) } : {};
    // The caller already had the role chunk.
    delete delta['role'];
    let text = textKey === 'delta' ? (typeof delta['content'] === 'string' ? delta['content'] : '') : typeof choice['text'] === 'string' ? choice['text'] : '';
    const finish = choice['finish_reason'];
    if (this.#pending !== '' && text !== '') {
      const matched = this.#match(text);
      if (matched === undefined) {
        if (this.#mode === 'restart') return { kind: 'diverged', reason: 'its answer does not begin with the text already delivered' };
        this.#pending = '';
      } else {
        text = matched;
      }
    }
    if (this.#mode === 'restart' && this.#pending !== '') {
      if (Array.isArray(delta['tool_calls'])) return { kind: 'diverged', reason: 'it called a tool where text had been delivered' };
      if (typeof finish === 'string') return { kind: 'diverged', reason: 'its answer ended before the text already delivered' };
    }
    if (textKey === 'delta') {
      if (typeof delta['content'] === 'string') delta['content'] = text;
      if (delta['content'] === '') delete delta['content'];
    }
    const choiceOut: JsonObject = textKey === 'delta' ? { ...choice, delta } : { ...choice, text };
    out['choices'] = choices.map((c) => (c === choice ? choiceOut : c));
    const empty = (textKey === 'delta' ? Object.keys(delta).length === 0 : text === '') && typeof finish !== 'string' && !isJsonObject(chunk['usage']);
    return { kind: 'chunk', chunk: empty ? undefined : out };
  }

  /** The part of `text` beyond what is pending, or undefined when it contradicts it. */
  #match(text: string): string | undefined {
    const pending = this.#pending;
    if (pending.startsWith(text)) {
      this.#pending = pending.slice(text.length);
      return '';
    }
    if (text.startsWith(pending)) {
      this.#pending = '';
      return text.slice(pending.length);
    }
    return undefined;
  }
}

/** Content events (text or tool-call deltas of choice 0) among these chunks: about one token each. */
export function contentEvents(chunks: readonly JsonObject[]): number {
  return chunks.filter((chunk) => {
    const parts = partsOf(chunk);
    return parts.text !== '' || parts.toolCalls;
  }).length;
}

/** An OpenAI usage object with what earlier attempts reported added. */
function withEarlierUsage(usage: JsonObject, earlier: Usage): JsonObject {
  const num = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);
  const prompt = num(usage['prompt_tokens']) + earlier.inputTokens;
  const completion = num(usage['completion_tokens']) + earlier.outputTokens;
  const out: JsonObject = { ...usage, prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
  if (earlier.cachedInputTokens > 0 || isJsonObject(usage['prompt_tokens_details'])) {
    const details = isJsonObject(usage['prompt_tokens_details']) ? usage['prompt_tokens_details'] : {};
    out['prompt_tokens_details'] = { ...details, cached_tokens: num(details['cached_tokens']) + earlier.cachedInputTokens };
  }
  return out;
}

function finishOf(chunk: JsonObject): string | undefined {
  const choices = Array.isArray(chunk['choices']) ? (chunk['choices'] as unknown[]) : [];
  const choice = choices.find((c): c is JsonObject => isJsonObject(c) && (c['index'] ?? 0) === 0);
  return choice && typeof choice['finish_reason'] === 'string' ? choice['finish_reason'] : undefined;
}

function partsOf(chunk: JsonObject): { text: string; toolCalls: boolean } {
  const choices = Array.isArray(chunk['choices']) ? (chunk['choices'] as unknown[]) : [];
  const choice = choices.find((c): c is JsonObject => isJsonObject(c) && (c['index'] ?? 0) === 0);
  if (!choice) return { text: '', toolCalls: false };
  if (isJsonObject(choice['delta'])) {
    const delta = choice['delta'];
    return {
      text: typeof delta['content'] === 'string' ? delta['content'] : '',
      toolCalls: Array.isArray(delta['tool_calls']) && delta['tool_calls'].length > 0,
    };
  }
  return { text: typeof choice['text'] === 'string' ? choice['text'] : '', toolCalls: false };
}
