// Google's Gemini API (generateContent), for upstreams only (api: gemini).
import type { WireFormat } from '../codec.ts';
import { geminiUpstream } from './upstream.ts';

export const gemini = {
  api: 'gemini',
  description: "Google's Gemini API (generateContent / streamGenerateContent)",
  upstream: geminiUpstream,
} as const satisfies WireFormat<'gemini'>;
