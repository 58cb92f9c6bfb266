// TypeScript view of a FallbackChain document after schema validation and defaults.
// The types of `spec` are generated from fallbackchain.schema.json (npm run gen:types writes
// spec.generated.ts); only the document envelope, whose metadata Kubernetes owns, is written here.
import type { ApiFormat, FailureClass, PrefillSupport, Priority } from '../core/types.ts';
import type { FallbackChainSpec, PolicySpec, ProviderSpec } from './spec.generated.ts';

export type {
  ApiKeyRef,
  BudgetSpec,
  ChainCondition,
  CircuitBreakerSpec,
  FallbackChainSpec,
  FallbackChainStatus,
  HeaderValueSpec,
  LimitsSpec,
  PolicySpec,
  PriceSpec,
  ProviderSpec,
  StepSpec,
  StepTimeoutsSpec,
  TargetSpec,
} from './spec.generated.ts';

/** Credentials of more than one string (`auth:`; clouds.md), as the generated types name them by path. */
export type AuthSpec = NonNullable<ProviderSpec['auth']>;
export type AwsAuthSpec = NonNullable<AuthSpec['aws']>;

export const API_VERSION = 'llmfallback.io/v1alpha1';
export const KIND = 'FallbackChain';

export interface FallbackChainDoc {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; generation?: number; [key: string]: unknown };
  spec: FallbackChainSpec;
}

// Compile-time: the schema's enums are the core's unions, so tsc fails when one changes alone.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;
export type SchemaMatchesCore = [
  Assert<Same<ProviderSpec['api'], ApiFormat>>,
  Assert<Same<NonNullable<ProviderSpec['prefill']>, PrefillSupport>>,
  Assert<Same<PolicySpec['priority'], Priority>>,
  // Every class but badRequest (a caller's own error) may move on to the next step.
  Assert<Same<PolicySpec['fallbackOn'][number], Exclude<FailureClass, 'badRequest'>>>,
];
