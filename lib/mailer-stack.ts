import { Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { MailerConfig } from './config';
import { MailerApi } from './constructs/api';
import { MailerData } from './constructs/data';
import { NonprofitsRoutes } from './constructs/nonprofits-routes';

export interface MailerStackProps extends StackProps {
  config: MailerConfig;
}

/** The whole system: its data, then the API and the routes that serve it. */
export class MailerStack extends Stack {
  readonly data: MailerData;
  readonly api: MailerApi;

  constructor(scope: Construct, id: string, props: MailerStackProps) {
    super(scope, id, props);
    this.data = new MailerData(this, 'Data');
    this.api = new MailerApi(this, 'Api', { config: props.config });
    new NonprofitsRoutes(this, 'Nonprofits', { api: this.api, data: this.data });
  }
}
