// Registers aws-sdk-client-mock's matchers and gives handler modules their environment.
import 'aws-sdk-client-mock-vitest/extend';
import './lambda-env';
import { createRequire } from 'node:module';
import { afterAll } from 'vitest';

// Unit files share their worker's modules (`isolate: false`), so a client class a file mocked
// (`mockClient(SESv2Client)` stubs the class's prototype) would stay mocked for the files the worker
// runs after it: a later file's real SES client got the last file's canned "socket hang up" without
// opening a socket. Every stub a file made ends with the file. aws-sdk-client-mock stubs in sinon's
// default sandbox, and it is loaded as CommonJS, so the sandbox is the one its own `require('sinon')`
// gives (sinon's ES build is another copy, with a sandbox of its own).
const sinon = createRequire(import.meta.resolve('aws-sdk-client-mock'))('sinon') as { restore(): void };
afterAll(() => {
  sinon.restore();
});
