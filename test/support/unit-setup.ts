// Registers aws-sdk-client-mock's matchers and gives handler modules their environment.
import 'aws-sdk-client-mock-vitest/extend';
import './lambda-env';
