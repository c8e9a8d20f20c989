/**
 * The errors the domain raises on purpose. Each carries the HTTP status and stable code it maps to,
 * so the one error-mapping middleware (http.ts) never needs to know which module threw.
 */

export interface FieldProblem {
  /** Where the problem is: a body field (`emails[3]`), a query parameter (`query.limit`), a path parameter. */
  field: string;
  message: string;
}

export abstract class AppError extends Error {
  abstract readonly status: number;
  abstract readonly code: string;
  /** Fields the answer carries beside `message` and `code` (none by default). */
  readonly fields: Record<string, unknown> = {};
  /** Headers the answer carries (none by default). */
  readonly headers: Record<string, string> = {};

  constructor(
    message: string,
    readonly details: FieldProblem[] = [],
  ) {
    super(message);
    this.name = new.target.name;
  }
}

export class ValidationError extends AppError {
  readonly status = 400;
  readonly code = 'VALIDATION_ERROR';
}

/** The request carries no identity this operation needs (API Gateway normally guarantees one). */
export class ForbiddenError extends AppError {
  readonly status = 403;
  readonly code = 'FORBIDDEN';
}

export class NotFoundError extends AppError {
  readonly status = 404;
  readonly code = 'NOT_FOUND';
}

/** What was asked for existed, and its retention ended: it is no longer kept. */
export class GoneError extends AppError {
  readonly status = 410;
  readonly code = 'GONE';
}

export class ConflictError extends AppError {
  readonly status = 409;
  readonly code = 'CONFLICT';
}

/** A key's recipient quota for the day would be passed: the answer says how many remain and when it resets. */
export class QuotaExceededError extends AppError {
  readonly status = 429;
  readonly code = 'QUOTA_EXCEEDED';
  override readonly fields: Record<string, unknown>;
  override readonly headers: Record<string, string>;

  constructor(
    message: string,
    quota: {
      limit: number;
      remaining: number;
      requested: number;
      resets_at: string;
      retryAfterSeconds: number;
    },
  ) {
    super(message);
    const { retryAfterSeconds, ...fields } = quota;
    this.fields = fields;
    this.headers = { 'retry-after': String(retryAfterSeconds) };
  }
}
