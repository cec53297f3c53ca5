// The DateTime scalar on its own: no input takes a DateTime today, so its parsing is checked on the
// schema's scalar directly, as a variable (parseValue) and as a literal (parseLiteral) would reach it.

import { GraphQLScalarType, parseValue as parseLiteralText } from 'graphql';
import { describe, expect, it } from 'vitest';
import { schema } from '../src/schema/index.ts';

const DateTime = schema.getType('DateTime') as GraphQLScalarType;

describe('DateTime', () => {
  it('serializes a Date as an ISO 8601 string in UTC', () => {
    expect(DateTime.serialize(new Date('2026-11-24T17:00:00.000Z'))).toBe('2026-11-24T17:00:00.000Z');
  });

  it('parses a valid timestamp from a variable and from a literal', () => {
    expect(DateTime.parseValue('2026-11-24T17:00:00.000Z')).toEqual(new Date('2026-11-24T17:00:00.000Z'));
    expect(DateTime.parseLiteral(parseLiteralText('"2026-11-24T18:00:00+01:00"'), {})).toEqual(new Date('2026-11-24T17:00:00.000Z'));
  });

  it('refuses an invalid date, as a variable and as a literal', () => {
    for (const invalid of ['2026-02-30T10:00:00Z', '2026-13-01T00:00:00Z', 'yesterday', '', '2026-11-24']) {
      expect(() => DateTime.parseValue(invalid), invalid).toThrow(/DateTime/);
      expect(() => DateTime.parseLiteral(parseLiteralText(JSON.stringify(invalid)), {}), invalid).toThrow(/DateTime/);
    }
    expect(() => DateTime.parseValue(1764003600000)).toThrow(/DateTime/);
    expect(() => DateTime.parseLiteral(parseLiteralText('42'), {})).toThrow(/DateTime/);
  });
});
