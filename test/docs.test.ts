import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { helpText } from '../src/config.ts';
import { SETTINGS } from '../src/settings.ts';
import { ERROR_CODES } from '../src/domain/errors.ts';

// Other clients are written against what the README says: every option and
// every error code that exists must be in it (a new one without docs fails here).
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const protocol = readFileSync(new URL('../docs/protocol.md', import.meta.url), 'utf8');

describe('the docs describe what exists', () => {
  it('every option has a row in the README options table, with its env variable, in one unbroken table', () => {
    // Rows after a line that is not a table row render as plain text: only the header's unbroken block counts.
    const lines = readme.split('\n');
    const header = lines.indexOf('| flag | env | default | meaning |');
    expect(header).toBeGreaterThan(-1);
    let end = header + 1;
    while (lines[end]?.startsWith('|')) end += 1;
    const rows = lines.slice(header + 2, end);
    const flagOf = (setting: (typeof SETTINGS)[number]) => (setting.kind === 'boolean' ? `--[no-]${setting.flag}` : `--${setting.flag}`);
    const missing = SETTINGS.filter((setting) => !rows.some((row) => row.startsWith(`| \`${flagOf(setting)}\``) && row.includes(`\`${setting.env}\``)));
    expect(missing.map((setting) => `--${setting.flag} (${setting.env})`)).toEqual([]);
  });

  it('every error code is listed in the README and in the protocol', () => {
    expect(ERROR_CODES.filter((code) => !readme.includes(`\`${code}\``))).toEqual([]);
    expect(ERROR_CODES.filter((code) => !protocol.includes(`\`${code}\``))).toEqual([]);
  });

  it('--help lists every option and every error code, in lines a terminal shows whole', () => {
    const help = helpText();
    const flagOf = (setting: (typeof SETTINGS)[number]) => (setting.kind === 'boolean' ? `--[no-]${setting.flag}` : `--${setting.flag}`);
    expect(SETTINGS.filter((setting) => !help.includes(flagOf(setting))).map((setting) => setting.flag)).toEqual([]);
    const words = new Set(help.split(/[\s,.:()]+/));
    expect(ERROR_CODES.filter((code) => !words.has(code))).toEqual([]);
    expect(help.split('\n').filter((line) => line.length > 132)).toEqual([]);
  });
});
