// Registers aws-sdk-client-mock's matchers, and gives handler modules the environment the stack
// would, since they read it once at import (cold start).
import 'aws-sdk-client-mock-vitest/extend';

process.env.NONPROFITS_TABLE = 'test-nonprofits';
process.env.NONPROFITS_DOMAIN_INDEX = 'by-domain';
process.env.AWS_REGION = 'us-east-1';
process.env.JOBS_TABLE = 'test-jobs';
process.env.JOB_RECIPIENTS_TABLE = 'test-job-recipients';
process.env.DELIVERIES_TABLE = 'test-deliveries';
process.env.JOBS_BY_API_KEY_INDEX = 'by-api-key';
process.env.ACTIVE_JOBS_INDEX = 'active';
process.env.EMAIL_QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/000000000000/emails';
process.env.SWEEPER_STALE_AFTER_SECONDS = '900';
