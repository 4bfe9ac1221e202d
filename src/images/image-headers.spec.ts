import { parse } from 'content-disposition';
import { describe, expect, it } from 'vitest';
import { downloadDisposition } from './image-headers.js';

const ID = '6f1c1a4e-2b0d-4c7e-9a51-0c4d3b2a1f00';
const named = (name: string | null, disk_format: string | null = 'qcow2') =>
  downloadDisposition({ id: ID, name, disk_format });

/** The file name a browser saves the download as (RFC 6266 parse). */
const fileOf = (name: string | null, disk_format: string | null = 'qcow2') => {
  const { type, parameters } = parse(named(name, disk_format));
  expect(type).toBe('attachment');
  return parameters.filename;
};

describe('downloadDisposition', () => {
  it('names the attachment <name>.<disk_format>', () => {
    expect(fileOf('cirros')).toBe(`cirros.qcow2`);
    expect(fileOf('cirros.qcow2')).toBe(`cirros.qcow2`);
    expect(fileOf('cirros', null)).toBe(`cirros`);
  });

  it('falls back to the id when the image has no usable name', () => {
    expect(fileOf(null)).toBe(`${ID}.qcow2`);
    expect(fileOf('')).toBe(`${ID}.qcow2`);
    expect(fileOf('...')).toBe(`${ID}.qcow2`);
    expect(fileOf('//')).toBe(`${ID}.qcow2`);
  });

  it('keeps path separators, quotes and control characters out of the file name', () => {
    for (const name of [
      '../../etc/passwd',
      'a\\b',
      '"quoted"',
      'a\r\nb',
      'x:y|z',
    ]) {
      const { type, parameters } = parse(named(name));
      expect(type).toBe('attachment');
      expect(parameters.filename).not.toMatch(/[/\\"\r\n:|]/);
      expect(parameters.filename.startsWith('.')).toBe(false);
      expect(parameters.filename.endsWith('.qcow2')).toBe(true);
    }
  });

  it('sends a non-ASCII name as RFC 6266 filename* with an ASCII fallback', () => {
    const header = named('Ünïcødé 日本');
    expect(header).toContain("filename*=UTF-8''");
    expect(header).toMatch(/filename="[\x20-\x7e]+"/);
    expect(parse(header).parameters.filename).toBe('Ünïcødé 日本.qcow2');
  });

  it('caps very long names', () => {
    expect(parse(named('n'.repeat(255))).parameters.filename).toBe(
      `${'n'.repeat(200)}.qcow2`,
    );
  });
});
