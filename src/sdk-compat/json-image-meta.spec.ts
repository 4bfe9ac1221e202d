import 'reflect-metadata';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../common/api-error.js';
import { loadConfig } from '../config/app-config.js';
import { ImageMetaPipe } from '../images/image-meta.pipe.js';
import { imageMetaFromJson } from './json-image-meta.js';
import { isOpenStackSdkRequest } from './sdk-request.js';

const pipe = new ImageMetaPipe(loadConfig({}));
const parse = (body: unknown, kind: 'create' | 'update' = 'create') =>
  imageMetaFromJson(body, pipe, kind);
const status = (fn: () => unknown) => {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return (err as ApiError).code;
  }
};

describe('imageMetaFromJson', () => {
  it('reads the wrapped form: core keys typed, other keys are properties', () => {
    const meta = parse({
      image: {
        name: 'ü',
        min_ram: 64,
        is_public: true,
        protected: false,
        os_distro: 'x',
        n: 2,
      },
    });
    expect(meta).toMatchObject({
      name: 'ü',
      min_ram: 64,
      is_public: true,
      protected: false,
    });
    expect(meta.properties).toEqual({ os_distro: 'x', n: '2' });
  });

  it('reads the flat form: properties from the nested object, core keys there set fields, SDK leftovers ignored', () => {
    const meta = parse({
      name: 'n',
      disk_format: 'raw',
      validate_checksum: false,
      properties: {
        is_public: true,
        min_ram: '7',
        'owner_specified.openstack.md5': '',
      },
    });
    expect(meta).toMatchObject({
      name: 'n',
      disk_format: 'raw',
      is_public: true,
      min_ram: 7,
    });
    expect(meta.properties).toEqual({ 'owner_specified.openstack.md5': null });
  });

  it('drops read-only keys, and id on update', () => {
    const body = {
      image: {
        id: 'x',
        status: 'active',
        virtual_size: null,
        deleted: false,
        os_hash_value: 'a',
      },
    };
    expect(parse(body, 'update')).toEqual({ properties: {} });
    expect(parse(body, 'create').id).toBe('x');
  });

  it('applies the header rules: bad values are 400s', () => {
    for (const body of [
      { image: { disk_format: 'floppy' } },
      { image: { min_ram: -1 } },
      { image: { size: 'big' } },
      { image: { name: 'x'.repeat(256) } },
      { image: { name: ['a'] } },
      { image: { name: 'a\nb' } },
      { image: { 'a b': 'c' } },
      { image: { copy_from: 'http://x/y' } },
      { properties: 'x' },
      [1],
      'text',
    ]) {
      expect(status(() => parse(body))).toBe(400);
    }
  });
});

describe('isOpenStackSdkRequest', () => {
  it.each([
    [
      'openstacksdk/0.101.0 keystoneauth1/5.0.0 python-requests/2.28.1 CPython/3.11.2',
      true,
    ],
    ['osc-lib/2.6 openstacksdk/1.0.1 keystoneauth1/5.1', true],
    ['python-glanceclient', false],
    ['python-glanceclient keystoneauth1/5.0.0 python-requests/2.28.1', false],
    ['curl/7.88.1', false],
    ['not-openstacksdk/1', false],
    [undefined, false],
  ])('%s → %s', (agent, expected) => {
    expect(isOpenStackSdkRequest({ headers: { 'user-agent': agent } })).toBe(
      expected,
    );
  });
});
