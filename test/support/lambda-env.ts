// Handler modules build their production adapters at import (cold start) from the environment the
// stack declares; tests that import them give them one. Tests inject their own adapters anyway.
process.env.NONPROFITS_TABLE = 'test-nonprofits';
process.env.JOBS_TABLE = 'test-jobs';
process.env.JOB_CONTENTS_TABLE = 'test-job-contents';
process.env.DELIVERIES_TABLE = 'test-deliveries';
process.env.SUPPRESSIONS_TABLE = 'test-suppressions';
process.env.USAGE_TABLE = 'test-usage';
process.env.OUTBOX_TABLE = 'test-outbox';
process.env.AUDIT_TABLE = 'test-audit';
process.env.AUDIT_RETENTION_DAYS = '400';
process.env.PERSON_REQUESTS_TABLE = 'test-person-requests';
process.env.ERASURE_RECHECK_SECONDS = '60';
process.env.PERSON_REQUEST_QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/000000000000/person-requests';
process.env.EVENT_BUS_NAME = 'test-bus';
process.env.RECIPIENT_QUOTA_PER_DAY = '100000';
process.env.USAGE_PLAN_RATE_LIMIT = '50';
process.env.USAGE_PLAN_BURST_LIMIT = '100';
process.env.USAGE_PLAN_QUOTA_PER_DAY = '100000';
process.env.UNSUBSCRIBE_SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:000000000000:secret:test-signing';
process.env.ADDRESS_KEY_SECRET_ARN = 'arn:aws:secretsmanager:us-east-1:000000000000:secret:test-address-key';
process.env.UNSUBSCRIBE_URL = 'https://api.example.org/v1/unsubscribe';
process.env.EMAIL_QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/000000000000/emails';
process.env.SWEEPER_QUEUE_SETTLE_SECONDS = '60';
process.env.LEDGER_COUNT_AFTER_SECONDS = '300';
// The reputation guard's defaults (lib/config.ts).
process.env.REPUTATION_WINDOW_HOURS = '24';
process.env.REPUTATION_MIN_VOLUME = '500';
process.env.PAUSE_BOUNCE_RATE = '0.02';
process.env.PAUSE_COMPLAINT_RATE = '0.0008';
// The stack's default (lib/config.ts), so tests that fill a template to the limit fill this one.
process.env.MAX_RENDERED_EMAIL_BYTES = String(256 * 1024);
process.env.EMAIL_TRANSPORT = 'record';
process.env.DEFAULT_SUBJECT = '(no subject)';
process.env.SENDER_NAME = 'Acme Relief';
process.env.SENDER_POSTAL_ADDRESS = '1 Main St, Springfield';
process.env.STORE_RENDERED_EMAILS = 'false';
process.env.AWS_REGION = 'us-east-1';
process.env.DEAD_LETTER_QUEUE_URL = 'https://sqs.us-east-1.amazonaws.com/000000000000/dead-letters';
process.env.ALARM_NAME_PREFIX = 'NonprofitMailer-';
process.env.SERVICE_VERSION = '0.0.0-test';
// Handlers imported in-process would print their metric and log lines into the test output.
process.env.POWERTOOLS_METRICS_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
