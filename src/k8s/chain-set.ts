// Which FallbackChains of the namespace the sidecar serves, given what the API server
// holds now and what was served before. Pure: the watcher feeds it the informer's cache.
//
// Rules:
// - a valid object is served (and becomes that chain's last good version);
// - an invalid object is refused; the last good version of that same object (same
//   name and uid) keeps serving, so one bad edit never takes a chain down;
// - a deleted object drops its chain (its last good version goes with it);
// - two chains answering to the same spec.model: the older object (creationTimestamp,
//   then name) wins, the other is refused (and falls back to its own last good
//   version when that one answers to a model nobody else claims).
import type { FallbackChainDoc } from '../chain/spec.ts';
import { validateChainDocument } from '../chain/validate.ts';

/** One chain the sidecar serves, with what it came from. */
export interface ServedChain {
  name: string;
  /** The model name the app asks for (spec.model, default metadata.name). */
  model: string;
  doc: FallbackChainDoc;
  uid: string;
  resourceVersion: string;
  creationTimestamp: string;
  /** True when the current object was refused and this is its last good version. */
  lastGood: boolean;
}

export interface Refusal {
  name: string;
  resourceVersion: string;
  /** "path: message" lines. */
  problems: string[];
  /** Whether the chain's last good version keeps serving in its place. */
  lastGoodKept: boolean;
}

export interface ChainSet {
  /** By object name; also the "last good" map for the next computation. */
  served: Map<string, ServedChain>;
  refusals: Refusal[];
}

interface Meta {
  name: string;
  uid: string;
  resourceVersion: string;
  creationTimestamp: string;
}

/**
 * @param objects the namespace's FallbackChain objects as the API server returns them, by name
 * @param lastGood `served` of the previous computation (empty at first)
 */
export function computeChainSet(objects: ReadonlyMap<string, unknown>, lastGood: ReadonlyMap<string, ServedChain>): ChainSet {
  const refusals = new Map<string, Refusal>();
  const candidates: ServedChain[] = [];
  for (const [name, raw] of objects) {
    const meta = metaOf(raw, name);
    const checked = validateChainDocument(withoutStatus(raw));
    if (checked.ok) {
      candidates.push({
        name,
        model: modelOf(checked.doc),
        doc: checked.doc,
        uid: meta.uid,
        resourceVersion: meta.resourceVersion,
        creationTimestamp: meta.creationTimestamp,
        lastGood: false,
      });
      continue;
    }
    const previous = sameObject(lastGood.get(name), meta);
    refusals.set(name, {
      name,
      resourceVersion: meta.resourceVersion,
      problems: checked.problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)),
      lastGoodKept: previous !== undefined,
    });
    if (previous) candidates.push({ ...previous, creationTimestamp: meta.creationTimestamp, lastGood: true });
  }

  // Oldest first: the first to claim a model keeps it.
  candidates.sort(byAge);
  const claimedBy = new Map<string, string>();
  const served = new Map<string, ServedChain>();
  const losers: ServedChain[] = [];
  for (const candidate of candidates) {
    const owner = claimedBy.get(candidate.model);
    if (owner === undefined) {
      claimedBy.set(candidate.model, candidate.name);
      served.set(candidate.name, candidate);
    } else {
      losers.push(candidate);
    }
  }
  for (const loser of losers) {
    const owner = claimedBy.get(loser.model) ?? '';
    const message = `/spec/model: model "${loser.model}" is already served by the older FallbackChain "${owner}"`;
    // The refused version may be an edit of a chain that served another model until now.
    const previous = loser.lastGood ? undefined : sameObject(lastGood.get(loser.name), loser);
    const fallback = previous && !claimedBy.has(previous.model) ? previous : undefined;
    if (fallback) {
      claimedBy.set(fallback.model, fallback.name);
      served.set(fallback.name, { ...fallback, lastGood: true });
    }
    const earlier = refusals.get(loser.name);
    refusals.set(loser.name, {
      name: loser.name,
      resourceVersion: earlier?.resourceVersion ?? loser.resourceVersion,
      problems: [...(earlier?.problems ?? []), message],
      lastGoodKept: fallback !== undefined,
    });
  }
  return { served, refusals: [...refusals.values()].sort((a, b) => a.name.localeCompare(b.name)) };
}

/** Identifies a refusal report, so that the same refusal is logged and counted once. */
export function refusalKey(r: Refusal): string {
  return `${r.name}@${r.resourceVersion}:${r.problems.join('|')}`;
}

/** Identifies what a computation serves, so that an unchanged set is not applied again. */
export function servedKey(set: ChainSet): string {
  return [...set.served.values()]
    .map((s) => `${s.name}@${s.resourceVersion}`)
    .sort()
    .join(',');
}

function modelOf(doc: FallbackChainDoc): string {
  return doc.spec.model ?? doc.metadata.name;
}

/** The last good version applies only to the same object, not to one re-created under its name. */
function sameObject(previous: ServedChain | undefined, meta: { uid: string }): ServedChain | undefined {
  if (!previous) return undefined;
  return previous.uid === '' || meta.uid === '' || previous.uid === meta.uid ? previous : undefined;
}

function byAge(a: ServedChain, b: ServedChain): number {
  if (a.creationTimestamp !== b.creationTimestamp) {
    // RFC 3339 timestamps of one API server compare as strings; a missing one sorts last.
    if (a.creationTimestamp === '') return 1;
    if (b.creationTimestamp === '') return -1;
    return a.creationTimestamp < b.creationTimestamp ? -1 : 1;
  }
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** `status` is the controller's report about the spec, not configuration: it never decides what is served. */
function withoutStatus(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return raw;
  const { status: _status, ...rest } = raw as Record<string, unknown>;
  return rest;
}

function metaOf(raw: unknown, name: string): Meta {
  const metadata = typeof raw === 'object' && raw !== null ? (raw as { metadata?: unknown }).metadata : undefined;
  const m = typeof metadata === 'object' && metadata !== null ? (metadata as Record<string, unknown>) : {};
  const text = (key: string): string => {
    const value = m[key];
    // JSON from the API server has strings; a typed client would have turned timestamps into Dates.
    if (value instanceof Date) return value.toISOString().replace(/\.\d{3}Z$/, 'Z');
    return typeof value === 'string' ? value : '';
  };
  return { name, uid: text('uid'), resourceVersion: text('resourceVersion'), creationTimestamp: text('creationTimestamp') };
}
