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

/** The request ended, or turned malformed, before the file's last byte. */
export class IncompleteUploadError extends Error {}
