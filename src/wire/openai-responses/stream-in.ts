// A Responses API stream (`api: openai-responses` upstreams) -> canonical Chat chunks. Only
// the events that carry content, a finish or an error become chunks; the lifecycle and
// bookkeeping events (response.created, content_part.*, *.done…) carry nothing new. Pure:
// one instance per attempt.
import type { ChatChunk, ChunkDelta, JsonObject } from '../openai-chat/types.ts';
import { isRecord, nowSeconds, stringOr } from '../translation-helpers.ts';
import { finishOf, usageToChat } from './answer.ts';

export class ResponsesStreamToChat {
  readonly #model: string;
  #id = `resp_${nowSeconds()}`;
  #created = nowSeconds();
  #answeredBy: string | undefined;
  #roleSent = false;
  /** output_index of a function_call item -> its Chat tool-call index. */
  readonly #tools = new Map<number, number>();
  #finished = false;

  constructor(model: string) {
    this.#model = model;
  }

  /** A response.completed or response.incomplete was seen. */
  get finished(): boolean {
    return this.#finished;
  }

  push(event: JsonObject): ChatChunk[] {
    switch (event['type']) {
      case 'response.created':
      case 'response.in_progress':
        this.#learn(event['response']);
        return [];
      case 'response.output_text.delta':
        return typeof event['delta'] === 'string' && event['delta'] !== '' ? [this.#chunk({ content: event['delta'] })] : [];
      case 'response.refusal.delta':
        return typeof event['delta'] === 'string' && event['delta'] !== '' ? [this.#chunk({ refusal: event['delta'] })] : [];
      case 'response.output_item.added': {
        const item = event['item'];
        if (!isRecord(item) || item['type'] !== 'function_call' || typeof event['output_index'] !== 'number') return [];
        const index = this.#tools.size;
        this.#tools.set(event['output_index'], index);
        const args = typeof item['arguments'] === 'string' ? item['arguments'] : '';
        return [
          this.#chunk({
            tool_calls: [{ index, id: stringOr(item['call_id'], ''), type: 'function', function: { name: stringOr(item['name'], ''), arguments: args } }],
          }),
        ];
      }
      case 'response.function_call_arguments.delta': {
        const index = typeof event['output_index'] === 'number' ? this.#tools.get(event['output_index']) : undefined;
        if (index === undefined || typeof event['delta'] !== 'string' || event['delta'] === '') return [];
        return [this.#chunk({ tool_calls: [{ index, function: { arguments: event['delta'] } }] })];
      }
      case 'response.completed':
      case 'response.incomplete':
        return [this.#end(event['response'])];
      case 'response.failed':
        return [this.#error(isRecord(event['response']) && isRecord(event['response']['error']) ? event['response']['error'] : {})];
      case 'error':
        return [this.#error(event)];
      default:
        return [];
    }
  }

  #learn(response: unknown): void {
    if (!isRecord(response)) return;
    if (typeof response['id'] === 'string') this.#id = response['id'];
    if (typeof response['created_at'] === 'number') this.#created = Math.floor(response['created_at']);
    if (typeof response['model'] === 'string' && response['model'] !== '') this.#answeredBy = response['model'];
  }

  #end(response: unknown): ChatChunk {
    this.#finished = true;
    const body = isRecord(response) ? response : {};
    this.#learn(body);
    const usage = usageToChat(body['usage']);
    const chunk = this.#chunk({}, finishOf(body, this.#tools.size > 0));
    if (usage) chunk.usage = usage;
    return chunk;
  }

  /** A failure event as a chunk carrying `error`: the proxy treats it as a mid-stream failure (classified by its code). */
  #error(error: JsonObject): ChatChunk {
    const chunk = this.#chunk({});
    const code = typeof error['code'] === 'string' ? error['code'] : null;
    chunk.error = {
      message: typeof error['message'] === 'string' ? error['message'] : 'the upstream response failed',
      type: code === 'rate_limit_exceeded' ? 'rate_limit_error' : 'server_error',
      code,
    };
    return chunk;
  }

  #chunk(delta: ChunkDelta, finish: ChatChunk['choices'][number]['finish_reason'] = null): ChatChunk {
    const out: ChunkDelta = this.#roleSent ? delta : { role: 'assistant', ...delta };
    this.#roleSent = true;
    return {
      id: this.#id,
      object: 'chat.completion.chunk',
      created: this.#created,
      model: this.#answeredBy ?? this.#model,
      choices: [{ index: 0, delta: out, finish_reason: finish }],
    };
  }
}
