/** An email as it was rendered for one recipient of a job. */
export interface RenderedCopy {
  recipient: string;
  subject: string;
  /** The text part, footer included (its link is `STORED_LINK`). */
  body: string;
  /** The HTML part, footer included, when the job has one. */
  html?: string | undefined;
}

/**
 * The rendered emails, kept for `GET /jobs/{id}/emails` when the deployment stores them. They hold
 * personal data and are most of what a job stores, so they live in their own table with a time to
 * live, apart from the ledger of outcomes, which stays.
 */
export interface RenderedEmailStore {
  put(jobId: string, copies: readonly RenderedCopy[]): Promise<void>;
  getMany(jobId: string, recipients: readonly string[]): Promise<Map<string, RenderedCopy>>;
}
