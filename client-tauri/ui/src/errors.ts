// Turning errors into words, exhaustively over the bindings' AppError kinds: a kind added
// in Rust fails `tsc` here (the `never` checks) until the UI says what it means.

import { ApiError, type AppError } from "./api";

/** Fails the build when a switch over a union misses a case. */
export function unreachable(x: never): never {
  throw new Error(`unhandled case: ${JSON.stringify(x)}`);
}

/** What the user should read for an AppError. */
export function describeAppError(e: AppError): string {
  switch (e.kind) {
    case "rateLimited":
      return e.retryAfterSecs ? `${e.message} (try again in ${e.retryAfterSecs} s)` : e.message;
    case "unreachable":
    case "invalid":
    case "conflict":
    case "signedOut":
    case "emailUnverified":
    case "notFound":
    case "server":
    case "device":
    case "call":
      return e.message;
    default:
      return unreachable(e);
  }
}

/** Whether trying the same thing again later may work (offered as "Retry"). */
export function isRetryable(e: AppError): boolean {
  switch (e.kind) {
    case "unreachable":
    case "rateLimited":
    case "server":
      return true;
    case "invalid":
    case "conflict":
    case "signedOut":
    case "emailUnverified":
    case "notFound":
    case "device":
    case "call":
      return false;
    default:
      return unreachable(e);
  }
}

export function describeError(err: unknown): string {
  if (err instanceof ApiError) return describeAppError(err.error);
  return err instanceof Error ? err.message : String(err);
}
