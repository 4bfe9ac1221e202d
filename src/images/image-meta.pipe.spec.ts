import 'reflect-metadata';
import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import { ApiError, ApiErrorCode } from '../common/api-error.js';
import { loadConfig } from '../config/app-config.js';
import { decodeHeaderValue, ImageMetaPipe } from './image-meta.pipe.js';

const pipe = new ImageMetaPipe(loadConfig({}));
const parse = (headers: IncomingHttpHeaders) => pipe.transform(headers);

/** UTF-8 bytes as Node hands them over in a header string (latin1). */
const wire = (text: string) => Buffer.from(text, 'utf8').toString('latin1');

function rejection(
  headers: IncomingHttpHeaders,
  p: ImageMetaPipe = pipe,
): ApiError {
  try {
    p.transform(headers);
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe(ApiErrorCode.BadRequest);
    return err as ApiError;
  }
  throw new Error(`accepted ${JSON.stringify(headers)}`);
}

describe('ImageMetaPipe', () => {
  describe('header selection', () => {
    it('reads only x-image-meta-* headers and always returns a properties object', () => {
      expect(
        parse({
          'content-type': 'application/octet-stream',
          'x-auth-token': 't',
          host: 'h',
        }),
      ).toEqual({ properties: {} });
    });

    it('maps each known key to its field', () => {
      const meta = parse({
        'x-image-meta-name': 'cirros',
        'x-image-meta-disk_format': 'qcow2',
        'x-image-meta-container_format': 'bare',
        'x-image-meta-checksum': 'abc',
        'x-image-meta-owner': 'tenant',
        'x-image-meta-id': 'some-id',
        'x-image-meta-status': 'active',
        'x-image-meta-store': 'file',
        'x-image-meta-location': 'http://example.com/x',
        'x-image-meta-copy_from': 'http://example.com/y',
        'x-image-meta-created_at': 'then',
      });
      expect(meta).toEqual({
        name: 'cirros',
        disk_format: 'qcow2',
        container_format: 'bare',
        checksum: 'abc',
        owner: 'tenant',
        id: 'some-id',
        status: 'active',
        store: 'file',
        location: 'http://example.com/x',
        copy_from: 'http://example.com/y',
        created_at: 'then',
        properties: {},
      });
    });

    it('treats dashes in a core key as underscores', () => {
      expect(
        parse({
          'x-image-meta-disk-format': 'raw',
          'x-image-meta-min-ram': '4',
        }),
      ).toEqual({
        disk_format: 'raw',
        min_ram: 4,
        properties: {},
      });
    });

    it('matches header names case-insensitively', () => {
      expect(
        parse({
          'X-Image-Meta-Name': 'upper',
          'X-IMAGE-META-PROPERTY-Distro': 'x',
        }),
      ).toEqual({
        name: 'upper',
        properties: { distro: 'x' },
      });
    });

    it('rejects an unknown x-image-meta-* key with "Bad header"', () => {
      expect(rejection({ 'x-image-meta-foo': 'bar' }).message).toBe(
        'Bad header: x-image-meta-foo',
      );
      expect(rejection({ 'x-image-meta-': 'bar' }).message).toBe(
        'Bad header: x-image-meta-',
      );
      expect(rejection({ 'x-image-meta-properties': 'x' }).message).toContain(
        'Bad header',
      );
    });

    it('rejects a property header without a name', () => {
      expect(rejection({ 'x-image-meta-property-': 'x' }).message).toBe(
        'Bad header: x-image-meta-property-',
      );
    });

    it('joins repeated header values as Node does', () => {
      expect(
        parse({ 'x-image-meta-property-tags': ['a', 'b'] as never }).properties,
      ).toEqual({
        tags: 'a, b',
      });
    });
  });

  describe('properties', () => {
    it('turns dashes in property names into underscores and keeps values verbatim', () => {
      expect(
        parse({
          'x-image-meta-property-os-distro': 'Ubuntu 12.04',
          'x-image-meta-property-kernel_id': ' spaced ',
        }).properties,
      ).toEqual({ os_distro: 'Ubuntu 12.04', kernel_id: ' spaced ' });
    });

    it('turns an empty value into null (removal of the value)', () => {
      expect(parse({ 'x-image-meta-property-gone': '' }).properties).toEqual({
        gone: null,
      });
      expect(parse({ 'x-image-meta-name': '' })).toEqual({
        name: null,
        properties: {},
      });
    });

    it('decodes UTF-8 bytes in names and property values', () => {
      const meta = parse({
        'x-image-meta-name': wire('Ubuntu 日本語 ünïcode'),
        'x-image-meta-property-description': wire('€ and ✓'),
      });
      expect(meta.name).toBe('Ubuntu 日本語 ünïcode');
      expect(meta.properties).toEqual({ description: '€ and ✓' });
    });
  });

  describe('decodeHeaderValue', () => {
    it('leaves ASCII untouched and decodes UTF-8 carried as latin1', () => {
      expect(decodeHeaderValue('plain ascii')).toBe('plain ascii');
      expect(decodeHeaderValue(wire('ö'))).toBe('ö');
    });
  });

  describe('integers', () => {
    it.each(['size', 'min_ram', 'min_disk'] as const)(
      'parses %s as an integer',
      (key) => {
        expect(parse({ [`x-image-meta-${key}`]: '42' })[key]).toBe(42);
        expect(parse({ [`x-image-meta-${key}`]: ' 7 ' })[key]).toBe(7);
        expect(parse({ [`x-image-meta-${key}`]: '0' })[key]).toBe(0);
        expect(parse({ [`x-image-meta-${key}`]: '+3' })[key]).toBe(3);
      },
    );

    it.each([
      ['size', 'abc'],
      ['size', '1.5'],
      ['size', '1e3'],
      ['size', '0x10'],
      ['min_ram', 'lots'],
      ['min_disk', '2GB'],
    ])('rejects %s=%s as not an integer', (key, value) => {
      const err = rejection({ [`x-image-meta-${key}`]: value });
      expect(err.message).toContain(
        `Invalid value '${value}' for parameter '${key}'`,
      );
      expect(err.message).toContain(
        `Cannot convert image ${key} '${value}' to an integer.`,
      );
    });

    it('rejects an empty integer header', () => {
      expect(rejection({ 'x-image-meta-size': '' }).message).toContain(
        "Cannot convert image size '' to an integer.",
      );
    });

    it.each(['size', 'min_ram', 'min_disk'])('rejects a negative %s', (key) => {
      const err = rejection({ [`x-image-meta-${key}`]: '-1' });
      expect(err.message).toContain(
        `Image ${key} must be >= 0 ('-1' specified).`,
      );
    });

    it('rejects integers beyond what can be represented exactly', () => {
      expect(
        rejection({ 'x-image-meta-size': '99999999999999999999' }).message,
      ).toContain("Invalid value '99999999999999999999' for parameter 'size'");
    });
  });

  describe('booleans', () => {
    it.each(['is_public', 'protected', 'deleted'] as const)(
      'parses %s leniently',
      (key) => {
        for (const yes of [
          'True',
          'true',
          '1',
          'yes',
          'Y',
          'on',
          't',
          ' TRUE ',
        ]) {
          expect(parse({ [`x-image-meta-${key}`]: yes })[key], yes).toBe(true);
        }
        for (const no of [
          'False',
          'false',
          '0',
          'no',
          'off',
          'garbage',
          'maybe',
        ]) {
          expect(parse({ [`x-image-meta-${key}`]: no })[key], no).toBe(false);
        }
        expect(parse({ [`x-image-meta-${key}`]: '' })[key]).toBe(false);
      },
    );
  });

  describe('formats and names', () => {
    it('accepts every configured disk and container format', () => {
      for (const disk of [
        'ami',
        'ari',
        'aki',
        'vhd',
        'vmdk',
        'raw',
        'qcow2',
        'vdi',
        'iso',
      ]) {
        const container = ['ami', 'ari', 'aki'].includes(disk) ? disk : 'bare';
        expect(
          parse({
            'x-image-meta-disk_format': disk,
            'x-image-meta-container_format': container,
          }),
        ).toMatchObject({ disk_format: disk, container_format: container });
      }
      for (const container of ['bare', 'ovf', 'ova']) {
        expect(
          parse({ 'x-image-meta-container_format': container })
            .container_format,
        ).toBe(container);
      }
    });

    it('rejects an unknown disk format', () => {
      expect(rejection({ 'x-image-meta-disk_format': 'floppy' }).message).toBe(
        "Invalid disk format 'floppy' for image.",
      );
    });

    it('rejects an unknown container format', () => {
      expect(
        rejection({ 'x-image-meta-container_format': 'zip' }).message,
      ).toBe("Invalid container format 'zip' for image.");
    });

    it('rejects an empty format header (a format cannot be set to nothing)', () => {
      expect(rejection({ 'x-image-meta-disk_format': '' }).message).toContain(
        'Invalid disk format',
      );
      expect(
        rejection({ 'x-image-meta-container_format': '' }).message,
      ).toContain('Invalid container format');
    });

    it('is case-sensitive about formats, as Glance is', () => {
      expect(
        rejection({ 'x-image-meta-disk_format': 'RAW' }).message,
      ).toContain("'RAW'");
    });

    it('uses the configured format lists', () => {
      const custom = new ImageMetaPipe(
        loadConfig({
          DISK_FORMATS: 'raw,ploop',
          CONTAINER_FORMATS: 'bare,docker',
        }),
      );
      expect(
        custom.transform({
          'x-image-meta-disk_format': 'ploop',
          'x-image-meta-container_format': 'docker',
        }),
      ).toMatchObject({ disk_format: 'ploop', container_format: 'docker' });
      expect(
        rejection({ 'x-image-meta-disk_format': 'qcow2' }, custom).message,
      ).toContain('qcow2');
    });

    it('accepts a 255-character name and rejects 256 characters', () => {
      expect(parse({ 'x-image-meta-name': 'n'.repeat(255) }).name).toHaveLength(
        255,
      );
      expect(rejection({ 'x-image-meta-name': 'n'.repeat(256) }).message).toBe(
        'Image name too long: 256',
      );
    });

    it('accepts a 32-character checksum and rejects a longer one (Glance\'s column holds 32)', () => {
      const md5 = 'd41d8cd98f00b204e9800998ecf8427e';
      expect(parse({ 'x-image-meta-checksum': md5 }).checksum).toBe(md5);
      expect(
        rejection({ 'x-image-meta-checksum': `${md5}0` }).message,
      ).toBe(
        'Invalid checksum: at most 32 characters (an MD5 hex digest), got 33',
      );
    });

    it('counts name length in characters, not bytes', () => {
      const name = '日'.repeat(255);
      expect(parse({ 'x-image-meta-name': wire(name) }).name).toBe(name);
      expect(
        rejection({ 'x-image-meta-name': wire(`${name}日`) }).message,
      ).toContain('256');
    });
  });

  describe('aki/ari/ami pairing', () => {
    it.each(['aki', 'ari', 'ami'])(
      'fills the missing container format from disk format %s',
      (f) => {
        expect(parse({ 'x-image-meta-disk_format': f })).toMatchObject({
          disk_format: f,
          container_format: f,
        });
      },
    );

    it.each(['aki', 'ari', 'ami'])(
      'fills the missing disk format from container format %s',
      (f) => {
        expect(parse({ 'x-image-meta-container_format': f })).toMatchObject({
          disk_format: f,
          container_format: f,
        });
      },
    );

    it.each([
      ['aki', 'bare'],
      ['raw', 'ami'],
      ['aki', 'ari'],
      ['ami', 'ovf'],
    ])('rejects disk format %s with container format %s', (disk, container) => {
      const err = rejection({
        'x-image-meta-disk_format': disk,
        'x-image-meta-container_format': container,
      });
      expect(err.message).toContain(
        'Invalid mix of disk and container formats',
      );
    });

    it('accepts matching amazon formats and any pair of other formats', () => {
      expect(
        parse({
          'x-image-meta-disk_format': 'ami',
          'x-image-meta-container_format': 'ami',
        }),
      ).toMatchObject({ disk_format: 'ami', container_format: 'ami' });
      expect(
        parse({
          'x-image-meta-disk_format': 'qcow2',
          'x-image-meta-container_format': 'ovf',
        }),
      ).toMatchObject({ disk_format: 'qcow2', container_format: 'ovf' });
    });

    it('leaves formats alone when neither is an amazon format', () => {
      expect(parse({ 'x-image-meta-disk_format': 'raw' })).toEqual({
        disk_format: 'raw',
        properties: {},
      });
    });
  });
});
