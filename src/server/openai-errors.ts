// The proxy's own errors, made in the canonical (OpenAI) error shape; each caller codec
// writes them in its caller's shape (CallerCodec.ownError).

export interface ErrorReply {
  status: number;
  body: { error: { message: string; type: string; param: string | null; code: string | null; [extra: string]: unknown } };
}

export function openAIError(status: number, message: string, code: string | null, type = 'invalid_request_error', param: string | null = null): ErrorReply {
  return { status, body: { error: { message, type, param, code } } };
}
