// The canonical form of a caller's request, for upstream codecs of another format.
import type { CallerRequest, CanonicalRequest } from './codec.ts';
import type { Translated } from './errors.ts';

/** The canonical request, or the reason this caller's request can only go to an upstream of its own format (thrown). */
export function canonicalOf(call: CallerRequest): Translated<CanonicalRequest> {
  if (call.canonical instanceof Error) throw call.canonical;
  return call.canonical;
}
