// Every wire format the proxy speaks, in one list. Adding a format is one folder and one
// entry here (see src/wire/README.md and docs/architecture.md): the schema's `api` enum (npm run gen:crd), the API's routes,
// the redaction of credential headers and the upstream codec of a provider's `api` are all
// read from this list.
import type { CallerCodec, CallerRoute, UpstreamCodec, WireFormat } from './codec.ts';
import { anthropic } from './anthropic/index.ts';
import { azureOpenAI } from './azure-openai/index.ts';
import { bedrock } from './bedrock/index.ts';
import { vertex } from './vertex/index.ts';
import { gemini } from './gemini/index.ts';
import { openAIChat } from './openai-chat/index.ts';
import { openAIResponses } from './openai-responses/index.ts';

export const WIRE_FORMATS = [openAIChat, anthropic, gemini, openAIResponses, azureOpenAI, bedrock, vertex] as const satisfies readonly WireFormat[];

type Registered = (typeof WIRE_FORMATS)[number];

/** A provider's `api:` value: the formats with an upstream codec. */
export type ApiFormat = Extract<Registered, { upstream: UpstreamCodec }>['api'];
/** CallerRequest.format values: the formats with a caller codec. */
export type CallerFormat = Extract<Registered, { caller: CallerCodec }>['api'];

/** The schema's `api` enum, in registry order (scripts/gen-crd.ts writes it into the schema). */
export const UPSTREAM_APIS: readonly ApiFormat[] = WIRE_FORMATS.flatMap((f) => ('upstream' in f ? [f.api] : []));

const UPSTREAMS = new Map<string, UpstreamCodec>(WIRE_FORMATS.flatMap((f): Array<[string, UpstreamCodec]> => ('upstream' in f ? [[f.api, f.upstream]] : [])));
const CALLERS = new Map<string, CallerCodec>(WIRE_FORMATS.flatMap((f): Array<[string, CallerCodec]> => ('caller' in f ? [[f.api, f.caller]] : [])));

/** The upstream codec of a provider's `api` (validated against UPSTREAM_APIS when the chain was loaded). */
export function upstreamCodec(api: ApiFormat): UpstreamCodec {
  const codec = UPSTREAMS.get(api);
  if (!codec) throw new Error(`no upstream codec for api "${api}"`);
  return codec;
}

/** The upstream codec of a format, when chains may call it (a caller's body is capped by its format's rules). */
export function upstreamCodecOf(format: string): UpstreamCodec | undefined {
  return UPSTREAMS.get(format);
}

/** One mounted route: its path, operation and the caller codec that serves it. */
export interface MountedRoute extends CallerRoute {
  caller: CallerCodec;
}

/** Every caller codec's routes; paths and operations are unique (checked here, at load). */
export const CALLER_ROUTES: readonly MountedRoute[] = (() => {
  const routes = [...CALLERS.values()].flatMap((caller) => caller.routes.map((route) => ({ ...route, caller })));
  const paths = new Set(routes.map((r) => r.path));
  const operations = new Set(routes.map((r) => r.operation));
  if (paths.size !== routes.length || operations.size !== routes.length) throw new Error('wire registry: two caller routes share a path or an operation');
  return routes;
})();

/** The caller codec whose error shape a path gets: the longest matching errorPathPrefixes entry. */
export function callerForPath(path: string): CallerCodec {
  let best: { caller: CallerCodec; length: number } | undefined;
  for (const caller of CALLERS.values()) {
    for (const prefix of caller.errorPathPrefixes) {
      if (path.startsWith(prefix) && (!best || prefix.length > best.length)) best = { caller, length: prefix.length };
    }
  }
  if (!best) throw new Error(`wire registry: no caller codec claims ${path} (the OpenAI codec claims '/')`);
  return best.caller;
}

/** The caller codec of a CallerRequest.format. */
export function callerCodec(format: CallerFormat): CallerCodec {
  const codec = CALLERS.get(format);
  if (!codec) throw new Error(`no caller codec for format "${format}"`);
  return codec;
}

/** Request headers that carry credentials in any upstream format (lower case), for redaction. */
export const SECRET_HEADERS: readonly string[] = [...new Set([...UPSTREAMS.values()].flatMap((codec) => codec.secretHeaders))];

/** Whether a format continues a trailing assistant message by default (a target's `prefill: auto|…` default). */
export function prefillByDefault(api: ApiFormat): boolean {
  return upstreamCodec(api).prefillByDefault;
}
