import {
  GetAccountCommand,
  GetConfigurationSetCommand,
  PutConfigurationSetSendingOptionsCommand,
  type SESv2Client,
} from '@aws-sdk/client-sesv2';
import type { SendingSwitch } from './reputation';
import type { SendingState, SendingStateReader } from './sending-controls';

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

  async isOn(): Promise<boolean> {
    if (!this.configurationSet) return true;
    const set = await this.client.send(
      new GetConfigurationSetCommand({ ConfigurationSetName: this.configurationSet }),
    );
    return set.SendingOptions?.SendingEnabled !== false;
  }

  async state(): Promise<SendingState> {
    const [account, setOn] = await Promise.all([this.client.send(new GetAccountCommand({})), this.isOn()]);
    const accountOn = account.SendingEnabled !== false;
    const reason = !accountOn
      ? `Sending is disabled for the account (enforcement status ${account.EnforcementStatus ?? 'unknown'})`
      : !setOn
        ? `Sending is paused for the configuration set ${this.configurationSet}`
        : undefined;
    return { enabled: accountOn && setOn, account: accountOn, set: setOn, ...(reason ? { reason } : {}) };
  }
}
