/**
 * Domain errors carry a stable symbolic code. Services throw them; each dialect maps the
 * codes to its own wire format in one table. Nothing outside a dialect knows wire codes.
 */
export const ERROR_CODES = [
  // credentials
  'KEY_MISSING', // no key/user/app key given
  'SECRET_MISSING', // no passcode/token/sign given
  'KEY_UNKNOWN', // no app with that key
  'SECRET_INVALID', // passcode / password wrong
  'SIGN_INVALID', // signature or token does not verify
  'TIMESTAMP_STALE', // signed timestamp outside the window
  'NONCE_REPLAYED',
  'APP_BLOCKED',
  'APP_EXPIRED',
  'IP_FORBIDDEN',
  'SERVICE_DISABLED', // the app is not enabled for this service
  'RATE_LIMITED',
  'QUOTA_EXHAUSTED',
  // sessions and roles
  'NOT_LOGGED_IN',
  'FORBIDDEN', // logged in, but not allowed
  'USER_BLOCKED',
  'USER_EXISTS',
  'EMAIL_EXISTS',
  'USER_UNKNOWN',
  'PASSWORD_INVALID',
  'LOCKED', // too many failures; try later
  // generic
  'BAD_REQUEST', // malformed body / wrong content type
  'VALIDATION', // a field is missing or wrong
  'NOT_FOUND',
  'CONFLICT', // already exists / state does not allow it
  'HAS_DEPENDENTS', // cannot remove: something refers to it
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA',
  'GONE', // existed, expired
  'UNAVAILABLE', // a backing service is down
  'INSUFFICIENT_FUNDS',
  'MISSING_FIELD', // a required field is absent (VALIDATION: present but wrong)
  'CONTENT_UNKNOWN', // no published content with that id
  'NOT_PURCHASED', // content must be paid for first
  'PAYMENT_REFUSED', // a transfer that cannot be made (to self, idempotency key reused with other content)
  'PROCESSING_FAILED', // an input could not be decoded, or processing it failed
  'UNKNOWN_FIELD', // a query names a field the object does not declare
  'DB_ERROR', // the database refused a statement (constraint, type)
  'ABORTED', // not run because an earlier step of the same transaction failed
  'INTERNAL',
  // reports
  'REPORT_EXISTS', // commit of a report ID that is already registered
  'REPORT_RECALLED', // the report is recalled already
  'METADATA_MISMATCH', // recall metadata differs from the registered metadata
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class DomainError extends Error {
  readonly code: ErrorCode;
  /** Name of the offending field, where there is one. */
  readonly field?: string;
  readonly details?: Record<string, unknown>;
  constructor(code: ErrorCode, message: string, opts: { field?: string; details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'DomainError';
    this.code = code;
    this.field = opts.field;
    this.details = opts.details;
  }
}

export const fail = (code: ErrorCode, message: string, opts?: { field?: string; details?: Record<string, unknown> }): never => {
  throw new DomainError(code, message, opts);
};

export function isDomainError(e: unknown): e is DomainError {
  return e instanceof DomainError;
}

/** The HTTP status a code most naturally has (used by the native API and as a default elsewhere). */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  KEY_MISSING: 401,
  SECRET_MISSING: 401,
  KEY_UNKNOWN: 401,
  SECRET_INVALID: 401,
  SIGN_INVALID: 401,
  TIMESTAMP_STALE: 401,
  NONCE_REPLAYED: 401,
  APP_BLOCKED: 403,
  APP_EXPIRED: 403,
  IP_FORBIDDEN: 403,
  SERVICE_DISABLED: 403,
  RATE_LIMITED: 429,
  QUOTA_EXHAUSTED: 402,
  NOT_LOGGED_IN: 401,
  FORBIDDEN: 403,
  USER_BLOCKED: 403,
  USER_EXISTS: 409,
  EMAIL_EXISTS: 409,
  USER_UNKNOWN: 404,
  PASSWORD_INVALID: 401,
  LOCKED: 423,
  BAD_REQUEST: 400,
  VALIDATION: 400,
  NOT_FOUND: 404,
  CONFLICT: 409,
  HAS_DEPENDENTS: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA: 415,
  GONE: 410,
  UNAVAILABLE: 503,
  INSUFFICIENT_FUNDS: 402,
  MISSING_FIELD: 400,
  CONTENT_UNKNOWN: 404,
  NOT_PURCHASED: 402,
  PAYMENT_REFUSED: 409,
  PROCESSING_FAILED: 422,
  UNKNOWN_FIELD: 400,
  DB_ERROR: 500,
  ABORTED: 409,
  INTERNAL: 500,
  REPORT_EXISTS: 409,
  REPORT_RECALLED: 409,
  METADATA_MISMATCH: 409,
};
