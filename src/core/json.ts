// JSON values as the proxy handles them: bodies, events and documents are parsed into
// `unknown` and narrowed here, once, instead of each module declaring its own guard.

/** A parsed JSON object (or any plain record read from one). */
export type JsonObject = { [key: string]: unknown };

/** True for a plain object (not null, not an array). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The parsed text; undefined when it is not JSON (an upstream's event or error body may be anything). */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The JSON text parsed and written again (one level of escapes undone: `\\u0025` becomes `%`); text that is not JSON as it is. */
export function rewrittenJson(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text));
  } catch {
    return text;
  }
}
