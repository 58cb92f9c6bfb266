// Golden pairs: canonical Chat requests -> Anthropic Messages requests for `api: anthropic` steps (+ dropped fields).
import { chatRequestToAnthropic } from '../../src/wire/anthropic/translate.ts';
import type { ChatRequest } from '../../src/wire/openai-chat/types.ts';
import { goldenJson } from './golden.ts';

goldenJson('chat-to-anthropic-request', (input) => chatRequestToAnthropic(input as ChatRequest));
