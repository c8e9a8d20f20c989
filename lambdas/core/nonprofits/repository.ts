import type { Actor } from '../audit/audit';
import type { Page } from '../cursor';
import type { NewNonprofit, Nonprofit, NonprofitDetails } from './nonprofit';

export interface NonprofitQuery {
  /** Only nonprofits whose email is at this domain (lower-case). */
  domain?: string | undefined;
  limit: number;
  cursor?: string | undefined;
}

/** The port the API handlers use; `dynamodb/dynamo-nonprofit-repository.ts` is the one production adapter. */
export interface NonprofitRepository {
  /** Changes are recorded in the audit trail (where the adapter has one) as made by `actor`. */
  create(input: NewNonprofit, actor?: Actor): Promise<Nonprofit>;
  get(email: string): Promise<Nonprofit | undefined>;
  update(email: string, details: NonprofitDetails, actor?: Actor): Promise<Nonprofit>;
  delete(email: string, actor?: Actor): Promise<void>;
  list(query: NonprofitQuery): Promise<Page<Nonprofit>>;
  /**
   * The nonprofits among these (lower-case) emails that exist, by email. Reads are strongly
   * consistent unless `consistent: false` (half the read cost, for readers that tolerate a second's lag).
   */
  getMany(emails: readonly string[], options?: { consistent?: boolean }): Promise<Map<string, Nonprofit>>;
}
