// Where a chain may take credentials from. A FallbackChain author is not the pod's owner:
// in Kubernetes a chain may only name keys of the credentials Secret that the pod's owner
// chose to mount (`secretKey`), never a sidecar file (the service-account token) or an
// environment variable. Pure: the sidecar (resolve.ts), the controller (status) and
// `validate --kubernetes` all apply these same rules.
import type { FallbackChainDoc } from './spec.ts';
import type { Problem } from './validate.ts';

/** Why a step's credentials could not be used; skip reasons and /config carry these codes. */
export const CREDENTIAL_PROBLEM = {
  /** apiKey.file / apiKey.env in Kubernetes mode without --allow-local-credentials. */
  localRefused: 'local_credentials_refused',
  /** A secretKey that is not a Secret key name (path traversal, `..`). */
  invalidSecretKey: 'invalid_secret_key',
  /** The source is allowed but holds no value (variable unset, file missing or empty). */
  unavailable: 'credential_unavailable',
  /** The Secret binds the key to other hosts than the provider's baseURL (llmfallback.io-allowed-hosts). */
  hostNotAllowed: 'credential_host_not_allowed',
} as const;
export type CredentialProblemCode = (typeof CREDENTIAL_PROBLEM)[keyof typeof CREDENTIAL_PROBLEM];

export interface CredentialPolicy {
  /** True for `serve --kubernetes`: only Secret keys, unless local credentials are allowed. */
  kubernetes: boolean;
  /** `--allow-local-credentials`: the operator lets Kubernetes chains use apiKey.file/env. */
  allowLocalCredentials: boolean;
}

/** Local files: every source is allowed (the operator wrote the config). */
export const LOCAL_POLICY: CredentialPolicy = { kubernetes: false, allowLocalCredentials: true };
/** `serve --kubernetes` and the controller by default. */
export const KUBERNETES_POLICY: CredentialPolicy = { kubernetes: true, allowLocalCredentials: false };

const SECRET_KEY_NAME = /^[-._a-zA-Z0-9]+$/;
export const SECRET_KEY_RULE = 'must be a Secret key name (letters, digits, "-", "_", "."; not "." and no "..")';

/** A Secret data key as Kubernetes allows it, minus `..` anywhere (no way out of the mounted folder). */
export function isSecretKeyName(name: string): boolean {
  return name.length > 0 && name.length <= 253 && SECRET_KEY_NAME.test(name) && name !== '.' && !name.includes('..');
}

export const LOCAL_REFUSED_MESSAGE =
  'is refused in Kubernetes: a FallbackChain may only use keys of the mounted credentials Secret (secretKey); the sidecar flag --allow-local-credentials allows file and env';

/** The credential references of `auth.aws` (each one ApiKeyRef). */
export const AWS_CREDENTIAL_FIELDS = ['accessKeyId', 'secretAccessKey', 'sessionToken'] as const;

/**
 * The pod's own cloud identity (IRSA's AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, GKE's
 * metadata server, AKS's federated token) is the
 * pod owner's, like its files and environment: a chain may name it (webIdentity: true) but
 * never the file, and in Kubernetes only when the operator passed --allow-local-credentials.
 */
export const WORKLOAD_IDENTITY_REFUSED_MESSAGE =
  "is refused in Kubernetes: it is the pod's own identity, not a key of the credentials Secret; the sidecar flag --allow-local-credentials allows it";

/** Whether a chain may use this kind of source under the policy. */
export function localSourceAllowed(policy: CredentialPolicy): boolean {
  return !policy.kubernetes || policy.allowLocalCredentials;
}

/**
 * Every credential reference of the document that the policy refuses, as validation problems
 * (the controller's Ready=False message, `validate --kubernetes`). Secret key names are also
 * checked by the schema; checking them here keeps the rule whole for documents that bypassed it.
 */
export function credentialProblems(doc: FallbackChainDoc, policy: CredentialPolicy): Problem[] {
  const problems: Problem[] = [];
  doc.spec.providers.forEach((provider, i) => {
    const ref = provider.apiKey;
    if (ref !== undefined) {
      const at = `/spec/providers/${i}/apiKey`;
      if (ref.secretKey !== undefined && !isSecretKeyName(ref.secretKey))
        problems.push({ path: `${at}/secretKey`, message: `${CREDENTIAL_PROBLEM.invalidSecretKey}: ${SECRET_KEY_RULE}` });
      if (!localSourceAllowed(policy)) {
        if (ref.file !== undefined) problems.push({ path: `${at}/file`, message: `${CREDENTIAL_PROBLEM.localRefused}: apiKey.file ${LOCAL_REFUSED_MESSAGE}` });
        if (ref.env !== undefined) problems.push({ path: `${at}/env`, message: `${CREDENTIAL_PROBLEM.localRefused}: apiKey.env ${LOCAL_REFUSED_MESSAGE}` });
      }
    }
    const aws = provider.auth?.aws;
    for (const field of AWS_CREDENTIAL_FIELDS) {
      const awsRef = aws?.[field];
      if (awsRef === undefined) continue;
      const at = `/spec/providers/${i}/auth/aws/${field}`;
      if (awsRef.secretKey !== undefined && !isSecretKeyName(awsRef.secretKey))
        problems.push({ path: `${at}/secretKey`, message: `${CREDENTIAL_PROBLEM.invalidSecretKey}: ${SECRET_KEY_RULE}` });
      if (!localSourceAllowed(policy) && (awsRef.file !== undefined || awsRef.env !== undefined))
        problems.push({ path: at, message: `${CREDENTIAL_PROBLEM.localRefused}: auth.aws.${field} file/env ${LOCAL_REFUSED_MESSAGE}` });
    }
    const sa = provider.auth?.gcpServiceAccount;
    if (sa?.secretKey !== undefined && !isSecretKeyName(sa.secretKey))
      problems.push({ path: `/spec/providers/${i}/auth/gcpServiceAccount/secretKey`, message: `${CREDENTIAL_PROBLEM.invalidSecretKey}: ${SECRET_KEY_RULE}` });
    if (sa && !localSourceAllowed(policy) && (sa.file !== undefined || sa.env !== undefined))
      problems.push({
        path: `/spec/providers/${i}/auth/gcpServiceAccount`,
        message: `${CREDENTIAL_PROBLEM.localRefused}: auth.gcpServiceAccount file/env ${LOCAL_REFUSED_MESSAGE}`,
      });
    if (provider.auth?.gcpWorkloadIdentity === true && !localSourceAllowed(policy)) {
      problems.push({
        path: `/spec/providers/${i}/auth/gcpWorkloadIdentity`,
        message: `${CREDENTIAL_PROBLEM.localRefused}: auth.gcpWorkloadIdentity ${WORKLOAD_IDENTITY_REFUSED_MESSAGE}`,
      });
    }
    if (provider.auth?.azureWorkloadIdentity === true && !localSourceAllowed(policy)) {
      problems.push({
        path: `/spec/providers/${i}/auth/azureWorkloadIdentity`,
        message: `${CREDENTIAL_PROBLEM.localRefused}: auth.azureWorkloadIdentity ${WORKLOAD_IDENTITY_REFUSED_MESSAGE}`,
      });
    }
    if (aws?.webIdentity === true && !localSourceAllowed(policy)) {
      problems.push({
        path: `/spec/providers/${i}/auth/aws/webIdentity`,
        message: `${CREDENTIAL_PROBLEM.localRefused}: auth.aws.webIdentity ${WORKLOAD_IDENTITY_REFUSED_MESSAGE}`,
      });
    }
    for (const [name, value] of Object.entries(provider.headers ?? {})) {
      if (typeof value === 'string') continue;
      const secretKey = value.valueFrom.secretKey;
      if (!isSecretKeyName(secretKey))
        problems.push({
          path: `/spec/providers/${i}/headers/${name}/valueFrom/secretKey`,
          message: `${CREDENTIAL_PROBLEM.invalidSecretKey}: ${SECRET_KEY_RULE}`,
        });
    }
  });
  return problems;
}
