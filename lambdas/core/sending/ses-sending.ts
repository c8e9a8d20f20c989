import {
  GetAccountCommand,
  GetConfigurationSetCommand,
  PutConfigurationSetSendingOptionsCommand,
  type SESv2Client,
} from '@aws-sdk/client-sesv2';
import type { SendingSwitch } from './reputation';
import type { SendingStateReader } from './sending-controls';

/**
 * SES's sending switch for this deployment: the account's (SES's own) and the stack's configuration
 * set's, which the guard and the operator turn off and on. With the set off, SES refuses every
 * email sent with it (`SendingPausedException`): the consumers put them back to wait.
 */
export class SesSending implements SendingSwitch, SendingStateReader {
  constructor(
    private readonly client: SESv2Client,
    private readonly configurationSet: string | undefined,
  ) {}

  async set(enabled: boolean): Promise<void> {
    if (!this.configurationSet) throw new Error('No configuration set to switch');
    await this.client.send(
      new PutConfigurationSetSendingOptionsCommand({
        ConfigurationSetName: this.configurationSet,
        SendingEnabled: enabled,
      }),
    );
  }

  async state(): Promise<{ enabled: boolean; reason?: string }> {
    const [account, set] = await Promise.all([
      this.client.send(new GetAccountCommand({})),
      this.configurationSet
        ? this.client.send(new GetConfigurationSetCommand({ ConfigurationSetName: this.configurationSet }))
        : undefined,
    ]);
    const accountEnabled = account.SendingEnabled !== false;
    const setEnabled = set?.SendingOptions?.SendingEnabled !== false;
    const reason = !accountEnabled
      ? `Sending is disabled for the account (enforcement status ${account.EnforcementStatus ?? 'unknown'})`
      : !setEnabled
        ? `Sending is paused for the configuration set ${this.configurationSet}`
        : undefined;
    return { enabled: accountEnabled && setEnabled, ...(reason ? { reason } : {}) };
  }
}
