import { describe, expect, it } from 'vitest';
import { type CfnTemplate, IntrinsicResolver } from '../../../local/template';

const template: CfnTemplate = {
  Resources: {
    Table: { Type: 'AWS::DynamoDB::Table' },
    Fn: { Type: 'AWS::Lambda::Function' },
  },
};

describe('IntrinsicResolver', () => {
  const resolver = new IntrinsicResolver(template);
  resolver.register('Table', {
    ref: 'nonprofits',
    attributes: { Arn: 'arn:aws:dynamodb:us-east-1:000000000000:table/nonprofits' },
  });

  it('resolves Ref and Fn::GetAtt to what the engines registered', () => {
    expect(resolver.resolve({ Ref: 'Table' })).toBe('nonprofits');
    expect(resolver.resolve({ 'Fn::GetAtt': ['Table', 'Arn'] })).toBe(
      'arn:aws:dynamodb:us-east-1:000000000000:table/nonprofits',
    );
  });

  it('gives unregistered resources stable local names and ARNs', () => {
    expect(resolver.resolve({ Ref: 'Fn' })).toBe('Fn');
    expect(resolver.resolve({ 'Fn::GetAtt': ['Fn', 'Arn'] })).toBe(
      'arn:aws:lambda:us-east-1:000000000000:Fn',
    );
  });

  it('resolves Fn::Join, Fn::Sub (with pseudo parameters and variables), Fn::Select and Fn::Split', () => {
    expect(resolver.resolve({ 'Fn::Join': ['/', [{ Ref: 'Table' }, 'index', 'x']] })).toBe(
      'nonprofits/index/x',
    );
    expect(
      resolver.resolve({ 'Fn::Sub': 'arn:${AWS::Partition}:x:${AWS::Region}:${AWS::AccountId}:${Table}' }),
    ).toBe('arn:aws:x:us-east-1:000000000000:nonprofits');
    expect(resolver.resolve({ 'Fn::Sub': ['${A}-${Table.Arn}', { A: 'a' }] })).toBe(
      'a-arn:aws:dynamodb:us-east-1:000000000000:table/nonprofits',
    );
    expect(resolver.resolve({ 'Fn::Select': [1, { 'Fn::Split': [',', 'a,b,c'] }] })).toBe('b');
  });

  it('resolves inside nested properties and names a reference it cannot resolve', () => {
    expect(resolver.resolve({ Variables: { TABLE: { Ref: 'Table' }, N: 1 } })).toEqual({
      Variables: { TABLE: 'nonprofits', N: 1 },
    });
    expect(() => resolver.resolve({ Ref: 'Missing' })).toThrow(/Missing/);
  });
});
