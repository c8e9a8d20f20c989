import { pageLimit } from '../cursor';
import { controlCharacter, controlCharacterMessage } from '../nonprofits/nonprofit';
import * as z from '../zod';

/**
 * Why an address gets no more email: it unsubscribed (the one-click link), its mailbox bounced for
 * good, its owner marked an email as spam (a complaint), or an operator added it.
 */
export const SUPPRESSION_REASONS = ['unsubscribed', 'bounced', 'complained', 'manual'] as const;
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
 * The query of `DELETE /suppressions/{email}`. A complaint is the strongest signal a mailbox
 * provider counts against a sender: lifting one takes `force=true` and the operator's reason, kept
 * in the log.
 */
export const liftQuery = z
  .strictObject({
    force: z.enum(['true', 'false'], { message: 'Must be true or false' }).optional(),
    reason: z
      .string()
      .trim()
      .min(1, 'Must not be empty')
      .max(MAX_NOTE_LENGTH, `Must be at most ${MAX_NOTE_LENGTH} characters`)
      .optional(),
  })
  .refine((query) => query.force !== 'true' || query.reason !== undefined, {
    path: ['reason'],
    message: 'Must say why when force=true',
  });

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
