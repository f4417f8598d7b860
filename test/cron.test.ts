import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../lib/config.js';
import { cronProblem } from '../lib/cron.js';
import { isVigilError } from '../lib/errors.js';

test('cronProblem accepts what five-field cron allows', () => {
  for (const ok of ['30 3 * * *', '*/5 * * * *', '0 0-6/2,12 1,15 JAN-mar mon-FRI', '59 23 31 12 7', '0 0 1 1 0', '  0  4 * * sun ']) {
    assert.equal(cronProblem(ok), null, ok);
  }
});

test('cronProblem names the field and the value out of range or malformed', () => {
  const cases: [string, RegExp][] = [
    ['61 3 * * *', /^minute: 61 is not in 0-59$/],
    ['0 24 * * *', /^hour: 24 is not in 0-23$/],
    ['0 0 0 * *', /^day of month: 0 is not in 1-31$/],
    ['0 0 * 13 *', /^month: 13 is not in 1-12$/],
    ['0 0 * * 8', /^day of week: 8 is not in 0-7$/],
    ['0 0 * * funday', /^day of week: "funday" is not a number or a name$/],
    ['*/0 * * * *', /^minute: step "0"/],
    ['5-1 * * * *', /^minute: range 5-1 ends before it starts$/],
    ['1,,2 * * * *', /^minute: "" is not a value/],
    ['* * * *', /^expected 5 fields/],
    ['* * * * * *', /^expected 5 fields/],
  ];
  for (const [expr, re] of cases) assert.match(String(cronProblem(expr)), re, expr);
});

test('a bad VIGIL_REPROCESS_CRON stops the configuration with the reason (vigil start refuses it)', () => {
  assert.throws(
    () => loadConfig({ VIGIL_REPROCESS_CRON: '61 3 * * *' }),
    (e: unknown) => isVigilError(e) && /VIGIL_REPROCESS_CRON.*minute: 61 is not in 0-59/.test(e.message),
  );
  assert.equal(loadConfig({ VIGIL_REPROCESS_CRON: 'off' }).VIGIL_REPROCESS_CRON, 'off');
  assert.equal(loadConfig({}).VIGIL_REPROCESS_CRON, '30 3 * * *');
});
