import type { Page } from '../cursor';
import type { Lift, Suppression, SuppressionReason } from './suppression';

export interface SuppressionQuery {
  reason?: SuppressionReason | undefined;
  limit: number;
  cursor?: string | undefined;
}

/**
 * Who gets no more email. An address has one record: suppressing it again keeps it, unless the new
 * reason is stronger (`REASON_STRENGTH` in the DynamoDB adapter), so the record always says the most a recipient asked for:
 * a complaint (which takes `force` to lift) over an unsubscribe over a bounce over an operator's add.
 */
export interface SuppressionList {
  /** Suppresses the address; `created` is false when it already was (the record kept is returned). */
  add(entry: Omit<Suppression, 'suppressed_at'>): Promise<{ suppression: Suppression; created: boolean }>;
  get(email: string): Promise<Suppression | undefined>;
  /**
   * The record that keeps the address suppressed: its own, or, for an address erased (where the
   * function knows the key), its key's, answered under the address asked about.
   */
  lookUp(email: string): Promise<Suppression | undefined>;
  /**
   * The suppressed addresses among these (lower-case) ones, read strongly consistent (an unsubscribe
   * a moment ago counts) unless `consistent: false` (half the read cost; one a second ago may not).
   */
  getMany(emails: readonly string[], options?: { consistent?: boolean }): Promise<Map<string, Suppression>>;
  /**
   * The addresses among these that were erased, each with the key that stands for it (its record
   * keeps the address suppressed): a door that lets no erased address in stores the key instead.
   */
  erasedAmong(emails: readonly string[], options?: { consistent?: boolean }): Promise<Map<string, string>>;
  /**
   * Suppresses again (`erased`, under the address) each of these addresses that was erased, where
   * the registry lets an address back in (an entry created or imported). Answers those.
   */
  rememberErased(emails: readonly string[]): Promise<string[]>;
  /**
   * Lifts a suppression when the lift gives what its reason takes (`LIFT_RULES`), and returns the
   * record lifted; 404 when the address is not suppressed, 409 naming what the lift lacks.
   */
  remove(email: string, lift: Lift): Promise<Suppression>;
  list(query: SuppressionQuery): Promise<Page<Suppression>>;
}
