import { describe, expect, it, vi } from 'vitest';
import { makeResumeSending } from '../../../lambdas/api/resume-sending';
import type { SendingControlsDependencies } from '../../../lambdas/core/sending/sending-controls';
import { apiEvent, jsonBody, lambdaContext } from '../../support/api-events';

/** A guard whose parts must never be reached by a request refused for its body. */
function untouched(): SendingControlsDependencies {
  const never = vi.fn(async () => {
    throw new Error('reached');
  });
  return {
    window: { counts: never },
    store: { get: never, pause: never, switched: never, resume: never },
    switch: { set: never, isOn: never },
    sending: { state: never },
    thresholds: { windowHours: 24, minVolume: 500, bounceRate: 0.02, complaintRate: 0.0008 },
  };
}

describe('POST /sending/resume', () => {
  it.each([
    [{ reason: 'too short' }, 'reason'],
    [{ reason: 'x'.repeat(501) }, 'reason'],
    [{ reason: 'the list was cleaned', force: 'true' }, 'force'],
    [{ reason: 'the list was cleaned', extra: 1 }, 'extra'],
    [{}, 'reason'],
  ])('answers 400 naming the field for %j, and touches nothing', async (body, field) => {
    const deps = untouched();
    const result = await makeResumeSending(deps)(
      apiEvent({ httpMethod: 'POST', body: JSON.stringify(body) }),
      lambdaContext,
    );
    expect(result.statusCode).toBe(400);
    expect(JSON.stringify(jsonBody(result).details)).toContain(field);
  });
});
