// Golden pairs: Chat responses -> Anthropic Messages responses, for Anthropic callers.
import { chatResponseToAnthropic } from '../../src/wire/anthropic/translate.ts';
import type { ChatResponse } from '../../src/wire/openai-chat/types.ts';
import { goldenJson } from './golden.ts';

goldenJson('chat-to-anthropic-response', (input) => chatResponseToAnthropic(input as ChatResponse));
