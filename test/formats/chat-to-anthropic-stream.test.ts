// Golden transcripts: an OpenAI-format upstream's SSE chunks -> the Anthropic events an Anthropic
// caller sees. `data: [DONE]` calls finish(), as the proxy does; a transcript without it (an
// upstream error) is not finished.
import { ChatStreamToAnthropic } from '../../src/wire/anthropic/translate.ts';
import type { ChatChunk } from '../../src/wire/openai-chat/types.ts';
import { goldenSse } from './golden.ts';

goldenSse('chat-to-anthropic-stream', (events) => {
  const translator = new ChatStreamToAnthropic('step-model');
  return events.flatMap((e) => (e.data === '[DONE]' ? translator.finish() : translator.push(JSON.parse(e.data) as ChatChunk)));
});
