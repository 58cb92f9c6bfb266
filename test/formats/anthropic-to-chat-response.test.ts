// Golden pairs: Anthropic Messages responses -> Chat responses.
import { anthropicResponseToChat } from '../../src/wire/anthropic/translate.ts';
import { CREATED, goldenJson } from './golden.ts';

goldenJson('anthropic-to-chat-response', (input) => anthropicResponseToChat(input, 'step-model', CREATED));
