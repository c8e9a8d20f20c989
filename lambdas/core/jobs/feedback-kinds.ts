/**
 * The kinds of report a sent email can draw: SES's bounces and complaints, as this system reads
 * them, and an unsubscribe by the email's own link (noted by the unsubscribe route). The jobs side
 * owns them: a delivery notes each report and the job counts it by kind; the SES feedback parser
 * only names which kind a report is.
 */
export const FEEDBACK_KINDS = ['bounce', 'transient_bounce', 'complaint', 'not_spam', 'unsubscribe'] as const;
export type FeedbackKind = (typeof FEEDBACK_KINDS)[number];
/** The kinds SES reports (all but an unsubscribe). */
export type SesFeedbackKind = Exclude<FeedbackKind, 'unsubscribe'>;
