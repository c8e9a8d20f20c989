import { z } from 'zod';

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

/** Emails are compared case-insensitively, so they are stored lower-cased. */
export const emailAddress = z
  .string({ message: 'Must be a string' })
  .trim()
  .max(EMAIL_MAX_LENGTH, `Must be at most ${EMAIL_MAX_LENGTH} characters`)
  .toLowerCase()
  .pipe(z.email({ message: 'Must be a valid email address' }));

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
