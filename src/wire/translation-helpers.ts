// Small helpers shared by the format translators.
import { isJsonObject, type JsonObject } from '../core/json.ts';

/** The translators' name for isJsonObject (core/json.ts). */
export const isRecord = isJsonObject;

export function stringOr(value: unknown, fallback: string): string {
  return typeof value === 'string' ? value : fallback;
}

/** A JSON value for an error message: strings as they are, anything else as JSON (never `[object Object]`). */
export function shownInMessage(value: unknown): string {
  if (typeof value === 'string') return value;
  return JSON.stringify(value) ?? String(value);
}

export function numberOr0(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? value : 0;
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** `data:<mime>;base64,<data>` split into its parts; undefined for anything else. */
export function parseDataUrl(url: string): { mimeType: string; data: string } | undefined {
  const match = /^data:([^;,]+)((?:;[^;,]+)*);base64,(.*)$/s.exec(url);
  if (!match) return undefined;
  return { mimeType: (match[1] ?? '').toLowerCase(), data: match[3] ?? '' };
}

/** Parses a tool call's `arguments` string; the empty string is an empty object. */
export function parseArguments(text: string): JsonObject | undefined {
  if (text.trim() === '') return {};
  try {
    const parsed: unknown = JSON.parse(text);
    return isRecord(parsed) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** Text of a string-or-text-parts content; non-text parts are ignored. */
export function textOf(content: unknown, separator = ''): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  const texts: string[] = [];
  for (const part of content) {
    if (isRecord(part) && typeof part['text'] === 'string') texts.push(part['text']);
    else if (isRecord(part) && typeof part['refusal'] === 'string') texts.push(part['refusal']);
  }
  return texts.join(separator);
}

/** Collects dropped field names once each, in first-seen order. */
export class DroppedFields {
  readonly #names: string[] = [];

  add(name: string): void {
    if (!this.#names.includes(name)) this.#names.push(name);
  }

  list(): string[] {
    return [...this.#names];
  }
}

/** Value that means "not set" for an OpenAI sampling/option field, so dropping it loses nothing. */
export function isUnsetOrDefault(field: string, value: unknown): boolean {
  if (value === undefined || value === null) return true;
  const defaults: Record<string, unknown> = {
    n: 1,
    presence_penalty: 0,
    frequency_penalty: 0,
    logprobs: false,
    parallel_tool_calls: true,
    store: false,
  };
  return field in defaults && defaults[field] === value;
}
