import { App, Stack } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { readSettings, SETTING } from '../../lambdas/core/settings';
import { ProjectFunction } from '../../lib/constructs/project-function';

/** A function in a stack of its own, bundling skipped (as in every infra test). */
function aFunction(): ProjectFunction {
  const stack = new Stack(new App({ context: { 'aws:cdk:bundling-stacks': [] } }), 'Settings');
  return new ProjectFunction(stack, 'Fn', { entry: 'api/get-usage.ts', description: 'settings test' });
}

describe('settings declared once, for the stack and the handler', () => {
  it('refuses at synthesis a value the handler would refuse, naming the function and the variable', () => {
    expect(() => aFunction().setting(SETTING.sesReplyTo, 'not an address')).toThrow(
      /Settings\/Fn: SES_REPLY_TO="not an address" is invalid/,
    );
    expect(() => aFunction().setting(SETTING.recipientQuotaPerDay, '-5')).toThrow(/RECIPIENT_QUOTA_PER_DAY/);
  });

  it('sets a valid value under the declared variable', () => {
    const fn = aFunction().setting(SETTING.usagePlanRateLimit, '12.5');
    const variables = Stack.of(fn).resolve(
      (fn.node.defaultChild as { environment?: unknown }).environment ?? {},
    ) as { variables?: Record<string, string> };
    expect(variables.variables?.USAGE_PLAN_RATE_LIMIT).toBe('12.5');
  });

  it('reads settings at cold start by the same declaration, naming every one missing or malformed', () => {
    const declared = {
      limit: SETTING.recipientQuotaPerDay,
      transport: SETTING.emailTransport,
      replyTo: SETTING.sesReplyTo,
    };
    expect(readSettings(declared, { RECIPIENT_QUOTA_PER_DAY: '250', EMAIL_TRANSPORT: 'ses' })).toEqual({
      limit: 250,
      transport: 'ses',
      replyTo: undefined,
    });
    expect(() => readSettings(declared, { EMAIL_TRANSPORT: 'pigeon' })).toThrow(
      /RECIPIENT_QUOTA_PER_DAY: .*EMAIL_TRANSPORT: /,
    );
  });
});
