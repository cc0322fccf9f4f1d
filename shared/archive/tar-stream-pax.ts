import type tar from 'tar-stream';
import { parsePaxRecords } from './pax-record.js';

const RAW_RECORDS = Symbol('raw pax records');

/** The private parts of tar-stream 3's extractor this module hooks into. */
interface ExtractInternals {
  _header: tar.Header | null;
  _pax: Record<string, unknown> | null;
  _decodeLongHeader(buf: Buffer): void;
}

/**
 * Makes `extract` keep each pax header's records as raw bytes, readable with `paxRecordsOf`.
 *
 * tar-stream decodes pax values as UTF-8 text (`header.pax`), which mangles binary values such
 * as extended attributes; pax values are bytes. It has no option for that, so this wraps its
 * one pax decoding step (`_decodeLongHeader`, tar-stream 3.x) and hangs the parsed records on
 * the same object it makes `header.pax`. test/archive-pax.test.ts reads a binary value back,
 * so a tar-stream release that changes this fails there rather than silently.
 */
export function keepRawPaxRecords(extract: tar.Extract): void {
  const internals = extract as unknown as ExtractInternals;
  const decode = internals._decodeLongHeader.bind(extract);
  internals._decodeLongHeader = (buf: Buffer) => {
    decode(buf);
    if ((internals._header?.type as string | undefined) === 'pax-header' && internals._pax) {
      Object.defineProperty(internals._pax, RAW_RECORDS, { value: parsePaxRecords(buf) });
    }
  };
}

/** The raw pax records of an entry read through an extractor given to `keepRawPaxRecords`. */
export function paxRecordsOf(header: tar.Header): ReadonlyMap<string, Buffer> | undefined {
  return (header.pax as { [RAW_RECORDS]?: Map<string, Buffer> } | undefined)?.[RAW_RECORDS];
}
