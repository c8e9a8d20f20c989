// Secrets Manager rotation schedule: rotation function --> the unsubscribe link secret (Secrets Manager)
import { secretsManagerClient } from '../core/aws-clients';
import { logger } from '../core/observability/telemetry';
import { type RotationEvent, rotateLinkSecret } from '../core/suppressions/link-secret-rotation';
import { workerHandler } from './support';

export const handler = workerHandler(async (event: RotationEvent): Promise<void> => {
  const outcome = await rotateLinkSecret(secretsManagerClient, event);
  // The secret's id and version only: never its value.
  logger.info('Rotation step done', {
    step: event.Step,
    secret_id: event.SecretId,
    version_id: event.ClientRequestToken,
    outcome,
  });
});
