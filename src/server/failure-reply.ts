// What the caller sees when no step produced an answer: the last meaningful upstream
// error with its status and body shape kept, the attempts listed inside it; or, when
// no upstream ever answered, an error of our own in the same shape. Never a bare 500.
import type { Redactor } from '../core/redact.ts';
import type { AttemptRecord, UpstreamFailure } from '../engine/outcome.ts';
import type { ChainEnd } from '../engine/run-chain.ts';
import { openAIError, type ErrorReply } from './openai-errors.ts';

export interface FailureReply {
  status: number;
  contentType: string;
  body: string;
  /** The proxy's own error (no upstream answered), as an object: the caller codec writes it in the caller's shape. */
  own?: ErrorReply['body'];
}

export interface ChainFailure {
  chain: string;
  end: ChainEnd;
  /** The last failure of all. */
  last?: UpstreamFailure;
  /** The last failure that carried an upstream response (status and body). */
  lastAnswered?: UpstreamFailure;
  attempts: readonly AttemptRecord[];
  /** No step was tried because no step's format can carry the request as sent: the caller's error, not an outage. */
  unservable?: boolean;
}

export function failureReply(f: ChainFailure, redactor: Redactor): FailureReply {
  const { chain, end, last, attempts } = f;
  const listed = attempts.map((a) => ({
    provider: a.provider,
    model: a.model,
    attempt: a.attempt,
    outcome: a.outcome,
    status: a.status ?? null,
    ms: a.ms,
    reason: a.reason ? redactor.redact(a.reason) : null,
  }));
  // A timeout after a 429 says less to the caller than the 429 itself.
  const upstream = f.lastAnswered?.response;
  if (upstream) {
    const text = redactor.redact(upstream.body);
    const body = withAttempts(text, chain, listed);
    return { status: errorStatus(upstream.status), contentType: body === text ? upstream.contentType : 'application/json', body };
  }
  const own = f.unservable ? unservableError(chain) : ownError(chain, end, last);
  own.body.error['llm_fallback'] = { chain, attempts: listed };
  return { status: own.status, contentType: 'application/json', body: JSON.stringify(own.body), own: own.body };
}

/**
 * The status of an error the caller gets: the upstream's own when it is an error status,
 * else 502. An upstream may answer `200 {"error": …}` (or a 1xx/3xx); relayed as it came,
 * the SDKs would take the error for an answer and not raise. An error is never a 2xx.
 */
export function errorStatus(upstreamStatus: number): number {
  return upstreamStatus >= 400 && upstreamStatus <= 599 ? upstreamStatus : 502;
}

function withAttempts(text: string, chain: string, attempts: unknown[]): string {
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) {
      const obj = parsed as Record<string, unknown>;
      const error = obj['error'];
      if (typeof error === 'object' && error !== null && !Array.isArray(error)) {
        (error as Record<string, unknown>)['llm_fallback'] = { chain, attempts };
        return JSON.stringify(obj);
      }
    }
  } catch {
    // Not JSON: returned as it came; the attempts are still in the header.
  }
  return text;
}

/** A 400, not a 503: trying again cannot help, and the SDKs would retry a 503. */
function unservableError(chain: string): ReturnType<typeof openAIError> {
  return openAIError(
    400,
    `no step of chain "${chain}" can serve this request as sent (each step's reason is in the attempts)`,
    'request_not_servable',
    'invalid_request_error',
  );
}

function ownError(chain: string, end: ChainEnd, last: UpstreamFailure | undefined): ReturnType<typeof openAIError> {
  if (end === 'overBudget')
    return openAIError(
      402,
      `no step of chain "${chain}" fits budget.maxCostPerRequestUSD for this request (worst-case cost per step in the attempts); nothing was sent upstream. Lower max_tokens or shorten the prompt`,
      'budget_exceeded',
      'invalid_request_error',
    );
  if (end === 'deadline')
    return openAIError(504, `chain "${chain}" ran out of time (policy.deadlineMs) before any step answered`, 'deadline_exceeded', 'timeout_error');
  if (!last) return openAIError(503, `chain "${chain}" has no step that can be tried now (all skipped; see attempts)`, 'no_available_step', 'server_error');
  if (last.class === 'timeout') return openAIError(504, `every step of chain "${chain}" failed; last: ${last.message}`, 'upstream_timeout', 'timeout_error');
  return openAIError(502, `every step of chain "${chain}" failed; last: ${last.message}`, `upstream_${last.class}`, 'server_error');
}
