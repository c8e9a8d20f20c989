import type { AuditSource } from '../audit/audit';
import { pageLimit } from '../cursor';
import type { FieldProblem } from '../errors';
import { controlCharacter, controlCharacterMessage } from '../nonprofits/nonprofit';
import * as z from '../zod';

/**
 * Why an address gets no more email: it unsubscribed (the one-click link), its mailbox bounced for
 * good, its owner marked an email as spam (a complaint), an operator added it, or the person asked
 * to be erased (`POST /people/{email}/erasure`: the record is then kept under the address's erased
 * key, `erased:…`, never the address; see core/people).
 */
export const SUPPRESSION_REASONS = ['unsubscribed', 'bounced', 'complained', 'manual', 'erased'] as const;
export type SuppressionReason = (typeof SUPPRESSION_REASONS)[number];

/** An address no job sends to, as stored (its key is the lower-case address). */
export interface Suppression {
  email: string;
  reason: SuppressionReason;
  suppressed_at: string;
  /** The job whose email led to it (an unsubscribe link, a bounce), where known. */
  job_id?: string;
  /** The API key that caused it: the sender of that job, or the operator who added it. */
  api_key_id?: string;
  /** An operator's words on a manual suppression. */
  note?: string;
}

export const MAX_NOTE_LENGTH = 500;

/** The body of `PUT /suppressions/{email}`: an operator's manual suppression, with an optional note. */
export const manualSuppressionRequest = z.strictObject({
  note: z
    .string({ message: 'Must be a string' })
    .max(MAX_NOTE_LENGTH, `Must be at most ${MAX_NOTE_LENGTH} characters`)
    .superRefine((value, context) => {
      const found = controlCharacter(value, '');
      if (found) context.addIssue({ code: 'custom', message: controlCharacterMessage(found) });
    })
    .optional(),
});

/**
 * The query of `DELETE /suppressions/{email}`: whether the lift overrides the person's own request
 * (`force`), and why it is lifted (the audit record keeps it). What each reason takes is `LIFT_RULES`;
 * missing either is a 409 that names it, a malformed one a 400.
 */
export const liftQuery = z.strictObject({
  force: z.enum(['true', 'false'], { message: 'Must be true or false' }).optional(),
  reason: z
    .string()
    .trim()
    .min(1, 'Must not be empty')
    .max(MAX_NOTE_LENGTH, `Must be at most ${MAX_NOTE_LENGTH} characters`)
    .superRefine((value, context) => {
      const found = controlCharacter(value, '');
      if (found) context.addIssue({ code: 'custom', message: controlCharacterMessage(found) });
    })
    .optional(),
});

/** A request to lift a suppression, as the repository takes it: with the key that asks. */
export interface Lift {
  force: boolean;
  reason?: string | undefined;
  api_key_id?: string | undefined;
}

/** What adds a suppression of each reason, as the audit trail names it. */
export const SUPPRESSION_SOURCES: Readonly<Record<SuppressionReason, AuditSource>> = {
  unsubscribed: 'unsubscribe_link',
  bounced: 'ses_feedback',
  complained: 'ses_feedback',
  manual: 'api',
  erased: 'api',
};

/** The shortest reason that can record a person's renewed consent ("asked again by email on …"). */
export const MIN_CONSENT_REASON_LENGTH = 10;

/**
 * What lifting each kind of suppression takes. An unsubscribe or a complaint is the person's own
 * request: only their renewed consent lifts it, so the lift says it overrides them (`force`) and
 * records that consent. A bounce or an operator's add is the sender's own call, with a reason.
 */
export const LIFT_RULES: Readonly<Record<SuppressionReason, { force: boolean; minReasonLength: number }>> = {
  unsubscribed: { force: true, minReasonLength: MIN_CONSENT_REASON_LENGTH },
  complained: { force: true, minReasonLength: MIN_CONSENT_REASON_LENGTH },
  erased: { force: true, minReasonLength: MIN_CONSENT_REASON_LENGTH },
  bounced: { force: false, minReasonLength: 1 },
  manual: { force: false, minReasonLength: 1 },
};

/** What the person did themselves, for a reason only their consent lifts. */
const OWN_REQUEST: Partial<Record<SuppressionReason, string>> = {
  unsubscribed: 'the person unsubscribed',
  complained: 'the person complained',
  erased: 'the person asked to be erased',
};

/** What a lift lacks to lift a suppression of this reason (nothing: it may). */
export function liftProblems(suppressed: SuppressionReason, lift: Lift): FieldProblem[] {
  const rule = LIFT_RULES[suppressed];
  const problems: FieldProblem[] = [];
  if (rule.force && !lift.force)
    problems.push({
      field: 'query.force',
      message: `Must be true: ${OWN_REQUEST[suppressed]}, and only their renewed consent lifts that`,
    });
  const given = lift.reason?.length ?? 0;
  if (given < rule.minReasonLength)
    problems.push({
      field: 'query.reason',
      message:
        rule.minReasonLength > 1
          ? `Must record the person's renewed consent, in at least ${rule.minReasonLength} characters`
          : 'Must say why the suppression is lifted',
    });
  return problems;
}

/** What lifting a suppression of this reason takes, in words for an error message. */
export function describeLiftRule(suppressed: SuppressionReason): string {
  const rule = LIFT_RULES[suppressed];
  return rule.force
    ? `force=true and a reason of at least ${rule.minReasonLength} characters recording the person's renewed consent`
    : 'a reason';
}

/** Why a recipient was not sent, as its delivery record says. */
export const suppressedBecause = (suppression: Pick<Suppression, 'reason'>) =>
  `The address is suppressed (${suppression.reason}).`;

/** The query of `GET /suppressions`. */
export const suppressionListQuery = z.strictObject({
  reason: z
    .enum(SUPPRESSION_REASONS, { message: `Must be one of ${SUPPRESSION_REASONS.join(', ')}` })
    .optional(),
  limit: pageLimit(50, 100),
  cursor: z.string().min(1, 'Must not be empty').optional(),
});
