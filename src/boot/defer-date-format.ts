/**
 * @nestjs/common builds an `Intl.DateTimeFormat` the moment it is imported,
 * for its ConsoleLogger, which this service does not use (logs go through
 * pino). Building one loads ICU locale data: about 10 MiB of resident memory
 * for nothing. Importing this module first makes `Intl.DateTimeFormat` hand
 * out formatters that are only built on first use; main.ts calls
 * `restoreDateTimeFormat()` once its imports are loaded, so nothing else in
 * the process ever sees the stand-in.
 */
const RealDateTimeFormat = Intl.DateTimeFormat;

function DeferredDateTimeFormat(
  locales?: string | string[],
  options?: Intl.DateTimeFormatOptions,
): Intl.DateTimeFormat {
  let real: Intl.DateTimeFormat | undefined;
  const formatter = () => (real ??= new RealDateTimeFormat(locales, options));
  return new Proxy({} as Intl.DateTimeFormat, {
    get(_target, key) {
      const value: unknown = Reflect.get(formatter(), key);
      return typeof value === 'function' ? value.bind(formatter()) : value;
    },
  });
}

Intl.DateTimeFormat = DeferredDateTimeFormat as unknown as typeof Intl.DateTimeFormat;

export function restoreDateTimeFormat(): void {
  Intl.DateTimeFormat = RealDateTimeFormat;
}
