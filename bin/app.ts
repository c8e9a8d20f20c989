#!/usr/bin/env node
// The CDK app entry the CLI runs (`npx cdk synth`, `npx cdk deploy`); the CLI passes cdk.json's context.
import { createApp } from '../lib/app';

createApp();
