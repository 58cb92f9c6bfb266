// A request that continues an answer already partly delivered: the original conversation
// plus the delivered text as a trailing assistant message (prefill). The same request in
// every form a step may send it in: the caller's own body (for an upstream of the caller's
// format) and the canonical one (translated for the others). Pure.
import type { JsonObject } from '../core/json.ts';
import type { CallerRequest } from './codec.ts';
import type { ChatRequest } from './openai-chat/types.ts';

/**
 * The text sent as prefill for `delivered`. Anthropic rejects a final assistant message that
 * ends in whitespace, so trailing whitespace is held back; the continuation usually starts
 * with it again, and the splice drops that repeat (see Splice).
 */
export function prefillText(delivered: string): string {
  return delivered.trimEnd();
}

/**
 * Whether a stream of this request can be continued by prefill at all: chat with one choice,
 * or a legacy completion of one string prompt (appending to the prompt is exact there).
 */
export function canPrefill(call: CallerRequest): boolean {
  const n = call.body['n'];
  if (n !== undefined && n !== null && n !== 1) return false;
  if (call.operation === 'completions') return typeof call.body['prompt'] === 'string';
  // OpenAI chat and Anthropic messages bodies alike; a format whose body has no `messages`
  // (and so cannot carry the delivered text to an upstream of its own format) is not resumed.
  return Array.isArray(call.body['messages']);
}

/**
 * `call` with `delivered` as the start of the assistant's answer. The continuation's output
 * limit is what is left of the caller's (`deliveredTokens` were spent), so the answer as a
 * whole is never longer than the caller allowed.
 */
export function withPrefill(call: CallerRequest, delivered: string, deliveredTokens: number): CallerRequest {
  const text = prefillText(delivered);
  if (call.operation === 'completions')
    return { ...call, body: lowerLimits({ ...call.body, prompt: `${String(call.body['prompt'])}${text}` }, deliveredTokens) };
  const body = lowerLimits({ ...call.body, messages: appendAssistant(call.body['messages'], text) }, deliveredTokens);
  const canonical =
    call.canonical instanceof Error
      ? call.canonical
      : {
          ...call.canonical,
          value: lowerLimits({ ...call.canonical.value, messages: appendAssistant(call.canonical.value.messages, text) }, deliveredTokens) as ChatRequest,
        };
  return { ...call, body, canonical };
}

const LIMIT_FIELDS = ['max_tokens', 'max_completion_tokens'];

function lowerLimits<T extends object>(body: T, spent: number): T {
  const out = { ...body } as Record<string, unknown>;
  for (const field of LIMIT_FIELDS) {
    const limit = out[field];
    if (typeof limit === 'number' && Number.isFinite(limit)) out[field] = Math.max(1, limit - spent);
  }
  return out as T;
}

/**
 * Messages ending with the assistant's text so far. A conversation that already ends with an
 * assistant message (the caller's own prefill: the upstream's answer continues it) gets the
 * text added to that message.
 */
function appendAssistant(messages: unknown, text: string): JsonObject[] {
  const list = (Array.isArray(messages) ? messages : []) as JsonObject[];
  const last = list[list.length - 1];
  if (!last || last['role'] !== 'assistant') return [...list, { role: 'assistant', content: text }];
  const content = last['content'];
  let joined: unknown;
  if (typeof content === 'string') joined = `${content}${text}`;
  else if (Array.isArray(content)) joined = [...(content as unknown[]), { type: 'text', text }];
  else joined = text;
  return [...list.slice(0, -1), { ...last, content: joined }];
}
