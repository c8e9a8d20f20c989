/** An email as it was rendered for one recipient of a job. */
export interface RenderedCopy {
  recipient: string;
  subject: string;
  /** The text part, footer included (its link is `STORED_LINK`). */
  body: string;
  /** The HTML part, footer included, when the job has one. */
  html?: string | undefined;
}

/** What a nonprofit's email was rendered from, besides the job's templates and the deployment's sender. */
export interface SnapshotValues {
  name: string;
  address: string;
}

/**
 * The nonprofits' values a batch's emails were rendered from, by address. Kept once per batch (one
 * small write) rather than each rendered email (a write of a kilobyte or more per email): the job's
 * emails are rendered again from it and the job's templates when read, exactly as they were sent.
 */
export interface RenderSnapshot {
  id: string;
  nonprofits: Readonly<Record<string, SnapshotValues>>;
}

/**
 * Nonprofits one snapshot holds at most: at their longest (an address of 254 ASCII characters, a
 * name of 200 and a postal address of 500 UTF-16 units at up to 3 bytes each: about 2.4 KB) 150 of
 * them stay under DynamoDB's 400 KB item limit; a larger batch takes several.
 */
export const MAX_SNAPSHOT_NONPROFITS = 150;

/**
 * What `GET /jobs/{id}/emails` shows of each email, when the deployment keeps it. It holds personal
 * data, so it lives in its own table with a time to live, apart from the ledger of outcomes, which
 * stays. A delivery names its snapshot (`snapshot` on its record).
 */
export interface RenderedEmailStore {
  putSnapshot(jobId: string, snapshot: RenderSnapshot): Promise<void>;
  /** The snapshots of a job by id (those past their retention are gone). */
  getSnapshots(jobId: string, ids: readonly string[]): Promise<Map<string, RenderSnapshot>>;
  /** Emails stored whole, one item each, by deployments before snapshots: read while their retention lasts. */
  getMany(jobId: string, recipients: readonly string[]): Promise<Map<string, RenderedCopy>>;
}
