// Golden transcripts: an Anthropic upstream's SSE events -> the Chat chunks an OpenAI caller sees.
// The last line of each output records whether the translator saw the end of the message.
import { AnthropicStreamToChat } from '../../src/wire/anthropic/translate.ts';
import { CREATED, goldenSse } from './golden.ts';

goldenSse('anthropic-to-chat-stream', (events) => {
  const translator = new AnthropicStreamToChat('step-model', CREATED);
  const chunks = events.flatMap((e) => translator.push(e.event ?? 'message', JSON.parse(e.data)));
  return [...chunks, { finished: translator.finished, usage: translator.usage() ?? null }];
});
