import { pageLimit } from '../cursor';
import * as z from '../zod';

/** A nonprofit as stored and as returned by the API (snake_case, as the original API answered). */
export interface Nonprofit {
  email: string;
  domain: string;
  name: string;
  address: string;
  created_at: string;
  updated_at: string;
}

export const NAME_MAX_LENGTH = 200;
export const ADDRESS_MAX_LENGTH = 500;
/** RFC 5321's limit on a forward path. */
export const EMAIL_MAX_LENGTH = 254;

/**
 * The longest value each template placeholder can insert: a nonprofit's field, as validated here.
 * Keyed like the template placeholders (`templates/template.ts`), which do not import this module.
 */
export const PLACEHOLDER_MAX_LENGTH = {
  name: NAME_MAX_LENGTH,
  address: ADDRESS_MAX_LENGTH,
  email: EMAIL_MAX_LENGTH,
} as const;

/**
 * Control characters (Unicode category Cc) and the Unicode line and paragraph separators. A name
 * or address is inserted into email subjects, which are headers: a CR or LF there would start a
 * header of the sender's choosing (`Bcc:`), and the others have no business in a name or address.
 */
const CONTROL_CHARACTER = /[\p{Cc}\u2028\u2029]/gu;

export interface FoundControlCharacter {
  /** As Unicode writes it, `U+000D`. */
  codePoint: string;
  /** Zero-based index in the string. */
  position: number;
}

/**
 * The first control character in the value, skipping those in `allowed` (a body may keep its
 * tabs and line breaks), or undefined when there is none.
 */
export function controlCharacter(value: string, allowed = ''): FoundControlCharacter | undefined {
  for (const match of value.matchAll(CONTROL_CHARACTER)) {
    if (allowed.includes(match[0])) continue;
    const hex = (match[0].codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0');
    return { codePoint: `U+${hex}`, position: match.index };
  }
  return undefined;
}

/** The message for a field that must stay on one line, naming what was found and where. */
export const controlCharacterMessage = ({ codePoint, position }: FoundControlCharacter) =>
  `Must not contain line breaks or other control characters (found ${codePoint} at position ${position})`;

/** RFC 5321 (4.5.3.1.1): the part of an address before the @. */
export const LOCAL_PART_MAX_OCTETS = 64;
/** RFC 1035 (2.3.4): each dot-separated label of a domain name. */
export const DOMAIN_LABEL_MAX_OCTETS = 63;

/**
 * An address as this API has always accepted it (stored lower-cased: emails are compared
 * case-insensitively). What reads, finds or removes a stored record takes it: an address stored
 * before the RFCs' limits on its parts were checked can still be looked up, deleted, erased and
 * paged past, and the links already sent to it still work.
 */
export const storedEmailAddress = z
  .string({ message: 'Must be a string' })
  .trim()
  .max(EMAIL_MAX_LENGTH, `Must be at most ${EMAIL_MAX_LENGTH} characters`)
  .toLowerCase()
  .pipe(z.email({ message: 'Must be a valid email address' }));

/**
 * An address a client gives for something new (a nonprofit, a recipient, a cc, a suppression):
 * also within RFC 5321's limit on the part before the @ and RFC 1035's on each domain label, as a
 * mail server would require. (The pattern allows ASCII only, so characters are octets.)
 */
export const emailAddress = storedEmailAddress
  .superRefine((address, context) => {
    const at = address.lastIndexOf('@');
    // Not an address at all: that problem is named already, and its parts have no length to check.
    if (at < 1) return;
    if (at > LOCAL_PART_MAX_OCTETS)
      context.addIssue({
        code: 'custom',
        message: `The part before the @ must be at most ${LOCAL_PART_MAX_OCTETS} characters (RFC 5321); it has ${at}`,
      });
    const long = address
      .slice(at + 1)
      .split('.')
      .find((label) => label.length > DOMAIN_LABEL_MAX_OCTETS);
    if (long)
      context.addIssue({
        code: 'custom',
        message: `Each dot-separated part of the domain must be at most ${DOMAIN_LABEL_MAX_OCTETS} characters (RFC 1035); ${long.slice(0, 12)}… has ${long.length}`,
      });
  })
  .meta({
    description: `An email address: at most ${EMAIL_MAX_LENGTH} characters, ${LOCAL_PART_MAX_OCTETS} before the @ (RFC 5321) and ${DOMAIN_LABEL_MAX_OCTETS} in each part of the domain (RFC 1035). Stored lower-cased.`,
  });

export const emailDomain = z
  .string({ message: 'Must be a string' })
  .trim()
  .toLowerCase()
  .regex(/^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/, {
    message: 'Must be a domain name such as example.org',
  });

const text = (max: number) =>
  z
    .string({ message: 'Must be a string' })
    // Before trimming, so the position is in the text the client sent; a line break at either end
    // is trimmed away, as any whitespace there always was, so only those inside are refused.
    .superRefine((value, context) => {
      const inner = value.trim();
      const found = controlCharacter(inner);
      if (found) {
        const leading = value.length - value.trimStart().length;
        context.addIssue({
          code: 'custom',
          message: controlCharacterMessage({ ...found, position: found.position + leading }),
        });
      }
    })
    .trim()
    .min(1, 'Must not be empty')
    .max(max, `Must be at most ${max} characters`);

export const nonprofitDetails = z.strictObject({
  name: text(NAME_MAX_LENGTH),
  address: text(ADDRESS_MAX_LENGTH),
});
export type NonprofitDetails = z.output<typeof nonprofitDetails>;

export const newNonprofit = nonprofitDetails.extend({ email: emailAddress });
export type NewNonprofit = z.output<typeof newNonprofit>;

export function domainOf(email: string): string {
  return email.slice(email.lastIndexOf('@') + 1);
}

/** The query of `GET /nonprofits`. */
export const nonprofitListQuery = z.strictObject({
  domain: emailDomain.optional(),
  limit: pageLimit(50, 100),
  cursor: z.string().min(1, 'Must not be empty').optional(),
});
