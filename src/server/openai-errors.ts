// Errors in OpenAI's own shape, so SDKs raise them as they would for OpenAI.

export interface ErrorReply {
  status: number;
  body: { error: { message: string; type: string; param: string | null; code: string | null; [extra: string]: unknown } };
}

export function openAIError(status: number, message: string, code: string | null, type = 'invalid_request_error', param: string | null = null): ErrorReply {
  return { status, body: { error: { message, type, param, code } } };
}

/** An SSE event that ends a broken stream: the SDKs raise on `data: {"error": …}`. */
export function streamErrorEvent(message: string, code: string): string {
  return `data: ${JSON.stringify({ error: { message, type: 'server_error', param: null, code } })}\n\n`;
}
