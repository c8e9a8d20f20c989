import { z } from 'zod';
import { documentClient } from '../core/aws-clients';
import { readEnv, tableName } from '../core/env';
import { DynamoNonprofitRepository, type NonprofitRepository } from '../core/nonprofits/repository';

export interface NonprofitDependencies {
  nonprofits: NonprofitRepository;
}

/** The production wiring, read once per cold start from the environment the stack declares. */
export function nonprofitDependenciesFromEnv(): NonprofitDependencies {
  const env = readEnv({ NONPROFITS_TABLE: tableName, NONPROFITS_DOMAIN_INDEX: z.string().min(3) });
  return {
    nonprofits: new DynamoNonprofitRepository({
      client: documentClient,
      tableName: env.NONPROFITS_TABLE,
      domainIndexName: env.NONPROFITS_DOMAIN_INDEX,
    }),
  };
}
