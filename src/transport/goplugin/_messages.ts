// The two protobuf messages of grpc.health.v1 that a go-plugin host sends and reads, in their
// wire form. Each has one field, so they are read and written here by hand; Berth's own services
// (proto/berth/v1) are to come with code generated from their .proto files.

/** grpc.health.v1.HealthCheckResponse.ServingStatus. */
export enum ServingStatus {
  UNKNOWN = 0,
  SERVING = 1,
  NOT_SERVING = 2,
  SERVICE_UNKNOWN = 3,
}

const DECODER = new TextDecoder();

/**
 * `HealthCheckRequest { string service = 1; }`: the service named, "" when absent. Unknown
 * fields are skipped as protobuf requires; a message that is not protobuf reads as "".
 */
export function decodeHealthRequest(bytes: Uint8Array): string {
  let service = "";
  let at = 0;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const byte = bytes[at++];
      if (byte === undefined) throw new RangeError("truncated varint");
      value += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return value;
    }
    throw new RangeError("varint too long");
  };
  try {
    while (at < bytes.length) {
      const key = varint();
      const [field, wire] = [Math.floor(key / 8), key & 7];
      if (wire === 0) varint();
      else if (wire === 1) at += 8;
      else if (wire === 5) at += 4;
      else if (wire === 2) {
        const length = varint();
        if (field === 1) service = DECODER.decode(bytes.subarray(at, at + length));
        at += length;
      } else return "";
    }
  } catch {
    return "";
  }
  return service;
}

/** `HealthCheckResponse { ServingStatus status = 1; }` (the default, UNKNOWN, is zero bytes). */
export function encodeHealthResponse(status: ServingStatus): Uint8Array {
  return status === ServingStatus.UNKNOWN ? new Uint8Array(0) : new Uint8Array([0x08, status]);
}
