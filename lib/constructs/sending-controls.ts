import { ArnFormat, Stack, Validations } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { TABLE } from '../../lambdas/core/bindings';
import { SETTING } from '../../lambdas/core/settings';
import type { MailerConfig } from '../config';
import type { MailerApi } from './api';
import type { MailerData } from './data';
import { ProjectFunction } from './project-function';
import type { SesFeedback } from './ses-feedback';

export interface SendingControlsProps {
  api: MailerApi;
  data: MailerData;
  config: MailerConfig;
  sesFeedback: SesFeedback | undefined;
}

/**
 * The reputation guard and its operator routes. The feedback consumer looks at the window after hard
 * bounces and complaints and turns the configuration set off past a threshold; `GET /sending` shows
 * the switch, the window and the thresholds, and `POST /sending/resume` turns sending back on
 * (both for `operator` keys). The window's counts are written by the outcome counter and the
 * feedback consumer, in the transactions that count what they count.
 */
export class SendingControls extends Construct {
  readonly functions: ProjectFunction[] = [];

  constructor(scope: Construct, id: string, { api, data, config, sesFeedback }: SendingControlsProps) {
    super(scope, id);
    const guarded = (fn: ProjectFunction, access: { window: boolean; switch: boolean; read: boolean }) =>
      this.guarded(fn, data, config, sesFeedback?.configurationSetName, access);
    const view = guarded(
      new ProjectFunction(this, 'GetSending', { entry: 'api/get-sending.ts', description: 'GET /sending' }),
      { window: true, switch: false, read: true },
    ).acknowledgeNoDeadLetterTarget('api');
    const resume = guarded(
      new ProjectFunction(this, 'ResumeSending', {
        entry: 'api/resume-sending.ts',
        description: 'POST /sending/resume',
      }),
      { window: true, switch: true, read: true },
    )
      .tellsEvents(data.outbox)
      .keepsAudit(data.audit, config.auditRetentionDays)
      .acknowledgeNoDeadLetterTarget('api');
    api.addRoute('GET', '/sending', view);
    api.addRoute('POST', '/sending/resume', resume);
    this.functions.push(view, resume);
    // The consumer of SES's reports looks at the window after each hard bounce or complaint.
    if (sesFeedback) guarded(sesFeedback.handler, { window: true, switch: true, read: false });
  }

  /**
   * Gives a function the guard's settings and what it calls: the window (BatchGetItem) and the
   * guard's record (GetItem, UpdateItem) in the jobs table, and, with SES, the configuration set's
   * switch and the account's and the set's state.
   */
  private guarded(
    fn: ProjectFunction,
    data: MailerData,
    config: MailerConfig,
    configurationSet: string | undefined,
    access: { window: boolean; switch: boolean; read: boolean },
  ): ProjectFunction {
    fn.setting(SETTING.emailTransport, config.transport)
      .setting(SETTING.reputationWindowHours, String(config.reputationWindowHours))
      .setting(SETTING.reputationMinVolume, String(config.reputationMinVolume))
      .setting(SETTING.pauseBounceRate, String(config.pauseBounceRate))
      .setting(SETTING.pauseComplaintRate, String(config.pauseComplaintRate))
      .bindTable(TABLE.jobs, data.jobs, [
        'dynamodb:BatchGetItem',
        'dynamodb:GetItem',
        ...(access.switch ? (['dynamodb:UpdateItem'] as const) : []),
      ]);
    if (config.transport !== 'ses' || !configurationSet) return fn;
    const stack = Stack.of(this);
    fn.setting(SETTING.sesConfigurationSet, configurationSet);
    const set = stack.formatArn({
      service: 'ses',
      resource: 'configuration-set',
      resourceName: configurationSet,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    });
    const actions = [
      ...(access.read ? ['ses:GetConfigurationSet'] : []),
      ...(access.switch ? ['ses:PutConfigurationSetSendingOptions'] : []),
    ];
    if (actions.length > 0) fn.addToRolePolicy(new PolicyStatement({ actions, resources: [set] }));
    if (access.read) {
      fn.addToRolePolicy(new PolicyStatement({ actions: ['ses:GetAccount'], resources: ['*'] }));
      Validations.of(fn.role ?? fn).acknowledge({
        id: 'AwsSolutions::AwsSolutions-IAM5[Resource::*]',
        reason:
          'ses:GetAccount (read-only: whether the account may send) supports no resource-level permission, as X-Ray tracing actions on the same role do not.',
      });
    }
    return fn;
  }
}
