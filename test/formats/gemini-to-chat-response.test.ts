// Golden pairs: Gemini generateContent responses -> Chat responses.
import { geminiResponseToChat } from '../../src/wire/gemini/translate.ts';
import { CREATED, goldenJson } from './golden.ts';

goldenJson('gemini-to-chat-response', (input) => geminiResponseToChat(input, 'step-model', CREATED));
