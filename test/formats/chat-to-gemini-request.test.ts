// Golden pairs: canonical Chat requests -> Gemini generateContent path + body (+ dropped fields).
// The fixture's own `stream` field chooses generateContent or streamGenerateContent, as the proxy does.
import { chatRequestToGemini } from '../../src/wire/gemini/translate.ts';
import type { ChatRequest } from '../../src/wire/openai-chat/types.ts';
import { goldenJson } from './golden.ts';

goldenJson('chat-to-gemini-request', (input) => {
  const chat = input as ChatRequest;
  return chatRequestToGemini(chat, chat.stream === true);
});
