// Golden pairs: Anthropic Messages requests from callers -> canonical Chat requests (+ dropped fields).
import { anthropicRequestToChat } from '../../src/wire/anthropic/translate.ts';
import { goldenJson } from './golden.ts';

goldenJson('anthropic-to-chat-request', (input) => anthropicRequestToChat(input));
