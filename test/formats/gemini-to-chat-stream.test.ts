// Golden transcripts: Gemini streamGenerateContent?alt=sse events -> the Chat chunks an OpenAI caller sees.
// The last line of each output records whether the translator saw the end of the answer.
import { GeminiStreamToChat } from '../../src/wire/gemini/translate.ts';
import { CREATED, goldenSse } from './golden.ts';

goldenSse('gemini-to-chat-stream', (events) => {
  const translator = new GeminiStreamToChat('step-model', CREATED);
  const chunks = events.flatMap((e) => translator.push(JSON.parse(e.data)));
  return [...chunks, { finished: translator.finished, usage: translator.usage() ?? null }];
});
