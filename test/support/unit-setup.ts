// Registers aws-sdk-client-mock's matchers, and gives handler modules the environment the stack
// would, since they read it once at import (cold start).
import 'aws-sdk-client-mock-vitest/extend';

process.env.NONPROFITS_TABLE = 'test-nonprofits';
process.env.NONPROFITS_DOMAIN_INDEX = 'by-domain';
process.env.AWS_REGION = 'us-east-1';
