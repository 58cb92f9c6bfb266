// Turns validated documents into the engine's Chain values, resolving API keys.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { builtinPrice } from '../core/prices.ts';
import { prefillDefault, targetKey, type Chain, type Price, type Provider, type Step, type StreamCommit } from '../core/types.ts';
import type { ApiKeyRef, FallbackChainDoc, ProviderSpec, TargetSpec } from './spec.ts';

export interface KeySources {
  env: Readonly<Record<string, string | undefined>>;
  /** Folder of the mounted credentials Secret, one file per key. */
  credentialsDir: string;
}

export function resolveChain(doc: FallbackChainDoc, source: string, keys: KeySources): Chain {
  const { spec } = doc;
  const providers = new Map(spec.providers.map((p) => [p.name, resolveProvider(p, keys)]));
  const providerSpecs = new Map(spec.providers.map((p) => [p.name, p]));
  const steps: Step[] = spec.steps.flatMap((s, index) => {
    // A plain step is a group of one target.
    const targets: TargetSpec[] = s.targets ?? [{ provider: s.provider ?? '', model: s.model ?? '', weight: 1 }];
    return targets.map((t) => {
      const provider = providers.get(t.provider);
      // validateChainDocument guarantees every step's provider exists.
      if (!provider) throw new Error(`step ${index} names unknown provider ${t.provider}`);
      const step: Step = {
        index,
        provider,
        model: t.model,
        retries: s.retries,
        timeouts: s.timeouts,
        ...priceOf(t.price ?? s.price, t.model),
        target: targetKey(provider, t.model),
        prefill: s.prefill ?? providerSpecs.get(t.provider)?.prefill ?? prefillDefault(provider.api),
      };
      if (s.targets) step.weight = t.weight;
      const limits = t.limits ?? s.limits;
      if (limits) step.limits = limits;
      if (s.maxOutputTokens !== undefined) step.maxOutputTokens = s.maxOutputTokens;
      return step;
    });
  });
  const { policy, circuitBreaker } = spec;
  return {
    name: doc.metadata.name,
    namespace: doc.metadata.namespace,
    model: spec.model ?? doc.metadata.name,
    steps,
    policy: {
      retryOn: new Set(policy.retryOn),
      fallbackOn: new Set(policy.fallbackOn),
      backoff: policy.backoff,
      deadlineMs: policy.deadlineMs,
      hedgeAfterMs: policy.hedge.afterMs,
      hedgeMaxInFlight: policy.hedge.maxInFlight,
      adaptive: policy.adaptive,
      priority: policy.priority,
      stream: { commit: commitOf(policy.stream), heartbeatMs: policy.stream.heartbeatMs },
    },
    breaker: {
      failureThreshold: circuitBreaker.failureThreshold,
      windowMs: Math.round(circuitBreaker.windowSeconds * 1000),
      cooldownMs: Math.round(circuitBreaker.cooldownSeconds * 1000),
    },
    maxCostPerRequestUSD: spec.budget?.maxCostPerRequestUSD,
    source,
  };
}

function commitOf(stream: FallbackChainDoc['spec']['policy']['stream']): StreamCommit {
  if (stream.commit === 'tokens') return { kind: 'tokens', tokens: stream.tokens };
  return { kind: stream.commit };
}

/** The configured price (missing rates are 0), else the built-in table's for the model. */
function priceOf(configured: Partial<Price> | undefined, model: string): Pick<Step, 'price' | 'priceSource'> {
  if (configured) {
    return { price: { inputPerMTok: configured.inputPerMTok ?? 0, outputPerMTok: configured.outputPerMTok ?? 0, cachedInputPerMTok: configured.cachedInputPerMTok }, priceSource: 'config' };
  }
  const builtin = builtinPrice(model);
  return builtin ? { price: builtin, priceSource: 'builtin' } : {};
}

function resolveProvider(spec: ProviderSpec, keys: KeySources): Provider {
  const key = readKey(spec.apiKey, keys);
  return {
    name: spec.name,
    api: spec.api,
    baseURL: spec.baseURL.replace(/\/+$/, ''),
    apiKey: key.value,
    keyProblem: key.problem,
    keySource: describeKeySource(spec.apiKey),
    headers: spec.headers ?? {},
  };
}

interface KeyRead { value?: string; problem?: string }

// A missing key is not a config error: the step is skipped with this reason, so a
// newcomer can start the examples with only some keys set.
function readKey(ref: ApiKeyRef | undefined, keys: KeySources): KeyRead {
  if (!ref) return {};
  if (ref.env !== undefined) {
    const value = keys.env[ref.env];
    return value ? { value: value.trim() } : { problem: `environment variable ${ref.env} is not set` };
  }
  const file = ref.file ?? path.join(keys.credentialsDir, ref.secretKey ?? '');
  try {
    const value = readFileSync(file, 'utf8').trim();
    return value ? { value } : { problem: `key file ${file} is empty` };
  } catch {
    return { problem: ref.file ? `key file ${file} cannot be read` : `credentials Secret has no readable key "${ref.secretKey}" (${file})` };
  }
}

function describeKeySource(ref: ApiKeyRef | undefined): string {
  if (!ref) return 'none';
  if (ref.env !== undefined) return `env:${ref.env}`;
  if (ref.file !== undefined) return `file:${ref.file}`;
  return `secretKey:${ref.secretKey}`;
}
