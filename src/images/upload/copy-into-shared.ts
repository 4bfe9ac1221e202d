/**
 * Copying into a SharedArrayBuffer, V8 uses a relaxed-atomic memcpy that goes
 * byte by byte when source and destination differ in alignment mod 8: about
 * seven times slower than a plain memcpy. HTTP body chunks start wherever
 * the parser left off, so most uploads hit that path (74% of the upload's
 * main thread in `npm run bench`'s profile). A misaligned chunk is staged in
 * an unshared buffer at the destination's alignment, then copied aligned.
 */
const STAGING_BYTES = 64 * 1024;
/** One per thread: the copy is synchronous, nothing else uses it meanwhile. */
const staging = new Uint8Array(new ArrayBuffer(STAGING_BYTES + 8));

/** `target.set(source, at)`, at memcpy speed whatever the alignments. */
export function copyIntoShared(
  target: Uint8Array,
  at: number,
  source: Uint8Array,
): void {
  const destination = target.byteOffset + at;
  if (((source.byteOffset - destination) & 7) === 0) {
    target.set(source, at);
    return;
  }
  // STAGING_BYTES is a multiple of 8: every piece lands at the same alignment.
  const pad = destination & 7;
  for (let done = 0; done < source.length; done += STAGING_BYTES) {
    const piece = source.subarray(done, done + STAGING_BYTES);
    staging.set(piece, pad);
    target.set(staging.subarray(pad, pad + piece.length), at + done);
  }
}
