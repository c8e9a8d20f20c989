import { type APIGatewayClient, GetApiKeyCommand } from '@aws-sdk/client-api-gateway';
import type { KeyValues } from './authorize';

/** Key values from API Gateway itself (`GetApiKey` with its value), so a key's value lives in one place. */
export class ApiGatewayKeyValues implements KeyValues {
  constructor(private readonly client: APIGatewayClient) {}

  async valueOf(keyId: string): Promise<string | undefined> {
    try {
      const { value } = await this.client.send(new GetApiKeyCommand({ apiKey: keyId, includeValue: true }));
      return value;
    } catch (error) {
      // A key deleted since the stack named it: it opens nothing.
      if ((error as Error).name === 'NotFoundException') return undefined;
      throw error;
    }
  }
}
