// Golden pairs: Chat responses -> Anthropic Messages responses, for Anthropic callers.
import { chatResponseToAnthropic } from '../../src/formats/anthropic.ts';
import type { ChatResponse } from '../../src/formats/openai-types.ts';
import { goldenJson } from './golden.ts';

goldenJson('chat-to-anthropic-response', (input) => chatResponseToAnthropic(input as ChatResponse));
