export type FileState = 'PROCESSING' | 'COMPLETED' | 'FAILED';

/** Pipeline stages in the order a file passes them. */
export const STAGES = ['QUEUED', 'VALIDATING', 'CONVERTING', 'STORING', 'DONE'] as const;
export type Stage = (typeof STAGES)[number];

export type Metadata = Record<string, unknown>;

/** One change of a file's status: what the event table stores and what subscribers receive. */
export interface StatusEvent {
  fileId: string;
  tenantId: string;
  sequence: number;
  status: FileState;
  stage: Stage;
  progress: number;
  message: string | null;
  metadata: Metadata;
  attempt: number;
  etaSeconds: number | null;
  updatedAt: Date;
}

export function isTerminal(status: FileState): boolean {
  return status !== 'PROCESSING';
}
