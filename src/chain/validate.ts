// Validation of FallbackChain documents: the CRD's JSON Schema (with its defaults)
// plus the cross-field rules a schema cannot state. Used by the file loader,
// `llm-fallback validate` and (later) the controller, so all of them agree.
import type { ErrorObject, ValidateFunction } from 'ajv';
import generatedValidator from './fallbackchain.validator.ts';
import { AWS_CREDENTIAL_FIELDS } from './credential-rules.ts';
import { API_VERSION, KIND, type FallbackChainDoc } from './spec.ts';
import type { JsonObject } from '../core/json.ts';

export interface Problem {
  /** JSON-pointer-like path inside the document, e.g. /spec/steps/1/provider. */
  path: string;
  message: string;
}

export type ValidationResult = { ok: true; doc: FallbackChainDoc } | { ok: false; problems: Problem[] };

// The schema's validator is compiled ahead of time (npm run gen:validator, from the file view
// of the schema in schema-compile.ts): no Ajv compiler is loaded and nothing compiled at startup.
const schemaValidator = generatedValidator as unknown as ValidateFunction;

/** Validate one parsed document; on success the returned doc has every default filled in. */
export function validateChainDocument(input: unknown): ValidationResult {
  const problems = checkEnvelope(input);
  if (problems.length > 0) return { ok: false, problems };
  const doc = structuredClone(input) as JsonObject;
  if (!schemaValidator(doc)) return { ok: false, problems: (schemaValidator.errors ?? []).map(describeAjvError) };
  const typed = doc as unknown as FallbackChainDoc;
  const semantic = checkCrossFieldRules(typed);
  return semantic.length > 0 ? { ok: false, problems: semantic } : { ok: true, doc: typed };
}

function checkEnvelope(input: unknown): Problem[] {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return [{ path: '', message: 'a FallbackChain document must be a mapping' }];
  }
  const doc = input as JsonObject;
  const problems: Problem[] = [];
  if (doc['apiVersion'] !== API_VERSION) problems.push({ path: '/apiVersion', message: `must be ${API_VERSION}` });
  if (doc['kind'] !== KIND) problems.push({ path: '/kind', message: `must be ${KIND}` });
  const metadata = doc['metadata'];
  const name = typeof metadata === 'object' && metadata !== null ? (metadata as JsonObject)['name'] : undefined;
  if (typeof name !== 'string' || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name) || name.length > 253) {
    problems.push({ path: '/metadata/name', message: 'must be a DNS subdomain name (lowercase letters, digits, "-" and ".")' });
  }
  return problems;
}

function describeAjvError(error: ErrorObject): Problem {
  const params = error.params as JsonObject;
  if (error.keyword === 'additionalProperties') {
    return { path: `${error.instancePath}/${String(params['additionalProperty'])}`, message: 'unknown field' };
  }
  if (error.keyword === 'required') {
    return { path: `${error.instancePath}/${String(params['missingProperty'])}`, message: 'is required' };
  }
  if (error.keyword === 'enum') {
    const allowed = (params['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)).join(', ');
    return { path: error.instancePath, message: `must be one of ${allowed}` };
  }
  return { path: error.instancePath, message: error.message ?? error.keyword };
}

/**
 * The rules the CRD states in CEL (x-kubernetes-validations); kept word for word the
 * same so that a file and the API server reject the same document the same way.
 */
export function checkCrossFieldRules(doc: FallbackChainDoc): Problem[] {
  const problems: Problem[] = [];
  const { providers, steps } = doc.spec;
  const seen = new Set<string>();
  providers.forEach((provider, i) => {
    if (seen.has(provider.name)) problems.push({ path: `/spec/providers/${i}/name`, message: `provider name "${provider.name}" is declared twice` });
    seen.add(provider.name);
    const sources = provider.apiKey ? Object.keys(provider.apiKey).length : 1;
    if (sources !== 1) problems.push({ path: `/spec/providers/${i}/apiKey`, message: 'apiKey must set exactly one of secretKey, env, file' });
    const secretKey = provider.apiKey?.secretKey;
    if (secretKey !== undefined && (secretKey === '.' || secretKey.includes('..'))) {
      problems.push({ path: `/spec/providers/${i}/apiKey/secretKey`, message: 'secretKey must be a Secret key name: not "." and no ".."' });
    }
    const aws = provider.auth?.aws;
    if (aws) {
      for (const field of AWS_CREDENTIAL_FIELDS) {
        const ref = aws[field];
        if (ref !== undefined && Object.keys(ref).length !== 1)
          problems.push({ path: `/spec/providers/${i}/auth/aws/${field}`, message: 'the credential must set exactly one of secretKey, env, file' });
      }
      const pair = aws.accessKeyId !== undefined && aws.secretAccessKey !== undefined;
      const valid = aws.webIdentity === true ? aws.accessKeyId === undefined && aws.secretAccessKey === undefined && aws.sessionToken === undefined : pair;
      if (!valid) problems.push({ path: `/spec/providers/${i}/auth/aws`, message: 'aws needs accessKeyId and secretAccessKey, or webIdentity: true alone' });
    }
    const auth = provider.auth;
    if (auth) {
      const kinds =
        (auth.aws ? 1 : 0) + (auth.gcpServiceAccount ? 1 : 0) + (auth.gcpWorkloadIdentity === true ? 1 : 0) + (auth.azureWorkloadIdentity === true ? 1 : 0);
      if (kinds > 1)
        problems.push({
          path: `/spec/providers/${i}/auth`,
          message: 'auth sets at most one of aws, gcpServiceAccount, gcpWorkloadIdentity, azureWorkloadIdentity',
        });
      if (auth.gcpServiceAccount && Object.keys(auth.gcpServiceAccount).length !== 1)
        problems.push({ path: `/spec/providers/${i}/auth/gcpServiceAccount`, message: 'the credential must set exactly one of secretKey, env, file' });
    }
  });
  steps.forEach((step, i) => {
    const hasTargets = step.targets !== undefined;
    if (hasTargets ? step.provider !== undefined || step.model !== undefined : step.provider === undefined || step.model === undefined) {
      problems.push({ path: `/spec/steps/${i}`, message: 'a step sets either provider and model, or targets' });
    }
    if (step.provider !== undefined && !seen.has(step.provider)) {
      problems.push({ path: `/spec/steps/${i}/provider`, message: `step names provider "${step.provider}", which spec.providers does not declare` });
    }
    const targets = new Set<string>();
    step.targets?.forEach((target, j) => {
      if (!seen.has(target.provider)) {
        problems.push({ path: `/spec/steps/${i}/targets/${j}/provider`, message: 'each step target must name a provider that spec.providers declares' });
      }
      const key = JSON.stringify([target.provider, target.model]);
      if (targets.has(key)) problems.push({ path: `/spec/steps/${i}`, message: 'a target (provider and model) appears twice in one step' });
      targets.add(key);
    });
  });
  const backoff = doc.spec.policy.backoff;
  if (backoff.baseMs > backoff.maxMs) problems.push({ path: '/spec/policy/backoff', message: 'backoff.baseMs must not exceed backoff.maxMs' });
  return problems;
}
