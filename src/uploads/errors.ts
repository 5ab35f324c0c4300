/** Typed failures of an upload; the GraphQL layer maps each to an error code. */
export class FileTooLargeError extends Error {
  constructor(readonly limit: number) {
    super(`The file is larger than the limit of ${limit} bytes.`);
  }
}

export class InvalidWebhookUrlError extends Error {}

/** webhookEvents that name nothing to send, or have no webhookUrl to send to. */
export class InvalidWebhookEventsError extends Error {}

export class MissingFileError extends Error {}

/** A request carrying more than its one file part. */
export class TooManyFilesError extends Error {
  constructor() {
    super('Send one file per request.');
  }
}

/**
 * graphql-upload-minimal's refusal of a file part past the one allowed (busboy's file count), as
 * TooManyFilesError; null for any other failure. It is told only by its message: the library
 * answers it 413, as it does a file over the size.
 */
export function tooManyFilesRefusal(error: unknown): TooManyFilesError | null {
  return /max file uploads exceeded/.test((error as Error | undefined)?.message ?? '') ? new TooManyFilesError() : null;
}

/** The request ended, or turned malformed, before the file's last byte. */
export class IncompleteUploadError extends Error {}
