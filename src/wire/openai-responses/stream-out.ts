// Canonical stream chunks -> the Responses API's typed stream events, in the order the real
// API sends them: response.created, response.in_progress, then per output item
// output_item.added, (content_part.added, output_text.delta…, output_text.done,
// content_part.done | function_call_arguments.delta…, function_call_arguments.done),
// output_item.done, and last response.completed / response.incomplete / response.failed.
// Every event carries its sequence_number. Pure: one instance per caller stream.
import type { ChatChunk, JsonObject, ToolCallDelta } from '../openai-chat/types.ts';
import { isRecord, nowSeconds } from '../translation-helpers.ts';
import { echoOf, itemId, statusOf, usageToResponses } from './answer.ts';
import type { FunctionCallItem, OutputItem, OutputMessageItem, ResponseObject, ResponsesUsage } from './types.ts';

export interface ResponsesEvent {
  type: string;
  sequence_number: number;
  [field: string]: unknown;
}

interface OpenItem {
  item: OutputItem;
  open: boolean;
  /** The message's content part being written, if one is open. */
  part?: { index: number; kind: 'output_text' | 'refusal'; text: string };
  /** The Chat tool-call index a function_call item carries. */
  toolIndex?: number;
}

export class ChatStreamToResponses {
  readonly #request: JsonObject;
  readonly #model: string;
  #sequence = 0;
  #id: string | undefined;
  #createdAt = nowSeconds();
  #answeredBy: string | undefined;
  readonly #items: OpenItem[] = [];
  #finish: unknown = null;
  #usage: ResponsesUsage | null = null;
  #ended = false;

  /** `request`: the caller's Responses request (the response object repeats its fields); `model`: the step's model. */
  constructor(request: JsonObject, model: string) {
    this.#request = request;
    this.#model = model;
  }

  /** The response has begun (response.created is out). */
  get started(): boolean {
    return this.#id !== undefined;
  }

  push(chunk: ChatChunk): ResponsesEvent[] {
    const out: ResponsesEvent[] = [];
    this.#begin(chunk, out);
    if (isRecord(chunk.usage)) this.#usage = usageToResponses(chunk.usage);
    const choice = Array.isArray(chunk.choices) ? chunk.choices[0] : undefined;
    if (!choice || !isRecord(choice.delta)) return out;
    const { delta } = choice;
    if (typeof delta.content === 'string' && delta.content !== '') this.#text('output_text', delta.content, out);
    if (typeof delta.refusal === 'string' && delta.refusal !== '') this.#text('refusal', delta.refusal, out);
    for (const call of Array.isArray(delta.tool_calls) ? delta.tool_calls : []) this.#toolCall(call, out);
    if (typeof choice.finish_reason === 'string') this.#finish = choice.finish_reason;
    return out;
  }

  /** The events that end a complete stream: every item closed, then response.completed (or .incomplete). */
  finish(): ResponsesEvent[] {
    if (this.#ended) return [];
    const out: ResponsesEvent[] = [];
    this.#begin(undefined, out);
    for (const open of this.#items) this.#close(open, out);
    this.#ended = true;
    const response = this.#response(statusOf(this.#finish));
    out.push(this.#event(response.status === 'incomplete' ? 'response.incomplete' : 'response.completed', { response }));
    return out;
  }

  /** The event that ends a broken stream: response.failed, with what was written so far. */
  fail(code: string, message: string): ResponsesEvent[] {
    if (this.#ended) return [];
    const out: ResponsesEvent[] = [];
    this.#begin(undefined, out);
    this.#ended = true;
    for (const open of this.#items) {
      if (!open.open) continue;
      open.item.status = 'incomplete';
      // What was delivered of the open part, so the failed response holds the partial answer.
      const part = open.part;
      const content = part && open.item.type === 'message' ? open.item.content[part.index] : undefined;
      if (part && content?.type === 'output_text') content.text = part.text;
      else if (part && content?.type === 'refusal') content.refusal = part.text;
    }
    const response: ResponseObject = { ...this.#response({ status: 'failed', incomplete_details: null }), error: { code, message } };
    out.push(this.#event('response.failed', { response }));
    return out;
  }

  #begin(chunk: ChatChunk | undefined, out: ResponsesEvent[]): void {
    if (this.#id !== undefined) return;
    const seed = chunk && typeof chunk.id === 'string' && chunk.id !== '' ? chunk.id : `${nowSeconds()}${Math.random().toString(36).slice(2)}`;
    this.#id = itemId('resp', seed);
    if (chunk && typeof chunk.created === 'number') this.#createdAt = chunk.created;
    if (chunk && typeof chunk.model === 'string' && chunk.model !== '') this.#answeredBy = chunk.model;
    const response = this.#response({ status: 'in_progress', incomplete_details: null });
    out.push(this.#event('response.created', { response }));
    out.push(this.#event('response.in_progress', { response }));
  }

  #text(kind: 'output_text' | 'refusal', delta: string, out: ResponsesEvent[]): void {
    let open = this.#items[this.#items.length - 1];
    if (!open || !open.open || open.item.type !== 'message') {
      for (const other of this.#items) this.#close(other, out);
      const item: OutputMessageItem = {
        id: itemId('msg', this.#id ?? '', this.#items.length),
        type: 'message',
        role: 'assistant',
        status: 'in_progress',
        content: [],
      };
      open = { item, open: true };
      this.#items.push(open);
      out.push(this.#event('response.output_item.added', { output_index: this.#items.length - 1, item: structuredClone(item) }));
    }
    const outputIndex = this.#items.indexOf(open);
    const message = open.item as OutputMessageItem;
    if (open.part?.kind !== kind) {
      if (open.part) this.#closePart(open, outputIndex, out);
      open.part = { index: message.content.length, kind, text: '' };
      const part =
        kind === 'output_text' ? { type: 'output_text' as const, text: '', annotations: [], logprobs: [] } : { type: 'refusal' as const, refusal: '' };
      message.content.push(part);
      out.push(
        this.#event('response.content_part.added', {
          item_id: message.id,
          output_index: outputIndex,
          content_index: open.part.index,
          part: structuredClone(part),
        }),
      );
    }
    open.part.text += delta;
    const where = { item_id: message.id, output_index: outputIndex, content_index: open.part.index };
    out.push(
      this.#event(
        kind === 'output_text' ? 'response.output_text.delta' : 'response.refusal.delta',
        kind === 'output_text' ? { ...where, delta, logprobs: [] } : { ...where, delta },
      ),
    );
  }

  #toolCall(call: ToolCallDelta, out: ResponsesEvent[]): void {
    if (!isRecord(call)) return;
    let open = this.#items.find((candidate) => candidate.toolIndex === call.index && candidate.open);
    if (!open) {
      // A new call: the message before it is finished (parallel calls stay open side by side).
      for (const other of this.#items) if (other.item.type === 'message') this.#close(other, out);
      const callId = typeof call.id === 'string' ? call.id : `call_${this.#items.length}`;
      const item: FunctionCallItem = {
        id: itemId('fc', callId, this.#items.length),
        type: 'function_call',
        status: 'in_progress',
        call_id: callId,
        name: call.function?.name ?? '',
        arguments: '',
      };
      open = { item, open: true, toolIndex: call.index };
      this.#items.push(open);
      out.push(this.#event('response.output_item.added', { output_index: this.#items.length - 1, item: structuredClone(item) }));
    }
    const item = open.item as FunctionCallItem;
    const delta = call.function?.arguments;
    if (typeof delta === 'string' && delta !== '') {
      item.arguments += delta;
      out.push(this.#event('response.function_call_arguments.delta', { item_id: item.id, output_index: this.#items.indexOf(open), delta }));
    }
  }

  #close(open: OpenItem, out: ResponsesEvent[]): void {
    if (!open.open) return;
    const outputIndex = this.#items.indexOf(open);
    if (open.item.type === 'message') {
      if (open.part) this.#closePart(open, outputIndex, out);
    } else {
      out.push(
        this.#event('response.function_call_arguments.done', {
          item_id: open.item.id,
          output_index: outputIndex,
          name: open.item.name,
          arguments: open.item.arguments,
        }),
      );
    }
    open.open = false;
    open.item.status = statusOf(this.#finish).status === 'incomplete' ? 'incomplete' : 'completed';
    out.push(this.#event('response.output_item.done', { output_index: outputIndex, item: structuredClone(open.item) }));
  }

  #closePart(open: OpenItem, outputIndex: number, out: ResponsesEvent[]): void {
    const part = open.part;
    if (!part) return;
    const message = open.item as OutputMessageItem;
    const content = message.content[part.index];
    if (content?.type === 'output_text') content.text = part.text;
    else if (content?.type === 'refusal') content.refusal = part.text;
    const where = { item_id: message.id, output_index: outputIndex, content_index: part.index };
    out.push(
      part.kind === 'output_text'
        ? this.#event('response.output_text.done', { ...where, text: part.text, logprobs: [] })
        : this.#event('response.refusal.done', { ...where, refusal: part.text }),
    );
    out.push(this.#event('response.content_part.done', { ...where, part: structuredClone(content) }));
    delete open.part;
  }

  #response(state: Pick<ResponseObject, 'status' | 'incomplete_details'>): ResponseObject {
    const done = state.status !== 'in_progress';
    return {
      id: this.#id ?? '',
      object: 'response',
      created_at: this.#createdAt,
      status: state.status,
      error: null,
      incomplete_details: state.incomplete_details,
      model: this.#answeredBy ?? this.#model,
      output: done ? this.#items.map((open) => structuredClone(open.item)) : [],
      usage: done ? this.#usage : null,
      ...echoOf(this.#request),
    };
  }

  #event(type: string, fields: JsonObject): ResponsesEvent {
    return { type, sequence_number: this.#sequence++, ...fields };
  }
}

/** One event as SSE: the real API names every event (`event: <type>`). */
export function sseOf(event: { type: string; [field: string]: unknown }): string {
  return `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}
