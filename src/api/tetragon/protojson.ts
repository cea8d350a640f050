// GetEventsResponse (as decoded from the wire) → the protojson object tetra
// prints, for any event kind, by walking the proto descriptors. json.ts builds
// the same shape straight from the internal model (faster; every kind the agent emits);
// this one serves clients of the gRPC stream (our CLI's `-o json`) and keeps
// the two paths honest in tests.
import * as protobuf from 'protobufjs';
import { formatTimestamp, type JsonObject, type JsonValue, type TetragonJsonEvent } from './json';
import { tetragonTypes, type ProtoObject, type ProtoValue } from './protos';

/** toObject options the conversion expects (also what the client service definition decodes with). */
export const JSON_DECODE_OPTIONS: protobuf.IConversionOptions = { longs: String, enums: String, bytes: String, defaults: false, arrays: false };

const WRAPPER_DEFAULTS: Record<string, JsonValue> = {
  '.google.protobuf.DoubleValue': 0,
  '.google.protobuf.FloatValue': 0,
  '.google.protobuf.Int64Value': '0',
  '.google.protobuf.UInt64Value': '0',
  '.google.protobuf.Int32Value': 0,
  '.google.protobuf.UInt32Value': 0,
  '.google.protobuf.BoolValue': false,
  '.google.protobuf.StringValue': '',
  '.google.protobuf.BytesValue': '',
};

function isObj(v: ProtoValue): v is ProtoObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function num(v: ProtoValue): number {
  return typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : 0;
}

/** protojson Duration: seconds with 0/3/6/9 fraction digits and an "s". */
function formatDuration(seconds: number, nanos: number): string {
  const neg = seconds < 0 || nanos < 0;
  const s = Math.abs(seconds);
  const n = Math.abs(nanos);
  let frac = '';
  if (n !== 0) {
    frac = n % 1_000_000 === 0 ? String(n / 1_000_000).padStart(3, '0') : n % 1000 === 0 ? String(n / 1000).padStart(6, '0') : String(n).padStart(9, '0');
    frac = '.' + frac;
  }
  return `${neg ? '-' : ''}${s}${frac}s`;
}

function camel(path: string): string {
  return path.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

function isDefaultScalar(field: protobuf.Field, v: ProtoValue): boolean {
  if (v === '' || v === 0 || v === '0' || v === false) return true;
  if (field.resolvedType instanceof protobuf.Enum) {
    const zero = field.resolvedType.valuesById[0];
    return v === zero;
  }
  return false;
}

function convertValue(field: protobuf.Field, v: ProtoValue): JsonValue {
  const rt = field.resolvedType;
  if (rt instanceof protobuf.Type) return convertMessage(rt, isObj(v) ? v : {});
  if (v instanceof Uint8Array) return Buffer.from(v).toString('base64');
  if (v === undefined || Array.isArray(v) || isObj(v)) return null;
  return v;
}

function convertMessage(type: protobuf.Type, obj: ProtoObject): JsonValue {
  const full = type.fullName;
  const wrapperDefault = WRAPPER_DEFAULTS[full];
  if (wrapperDefault !== undefined) {
    const v = obj.value;
    if (v === undefined || v === null) return wrapperDefault;
    return v instanceof Uint8Array ? Buffer.from(v).toString('base64') : (v as JsonValue);
  }
  if (full === '.google.protobuf.Timestamp') return formatTimestamp({ sec: num(obj.seconds), nsec: num(obj.nanos) });
  if (full === '.google.protobuf.Duration') return formatDuration(num(obj.seconds), num(obj.nanos));
  if (full === '.google.protobuf.FieldMask') {
    const paths = Array.isArray(obj.paths) ? obj.paths.filter((p): p is string => typeof p === 'string') : [];
    return paths.map(camel).join(',');
  }
  if (full === '.google.protobuf.Any') {
    const url = typeof obj.type_url === 'string' ? obj.type_url : '';
    const out: JsonObject = { '@type': url };
    const inner = lookupAny(url);
    if (inner && typeof obj.value === 'string') {
      const decoded = inner.toObject(inner.decode(Buffer.from(obj.value, 'base64')), JSON_DECODE_OPTIONS) as ProtoObject;
      const conv = convertMessage(inner, decoded);
      if (isObj(conv as ProtoValue) && !(inner.fullName in WRAPPER_DEFAULTS)) Object.assign(out, conv);
      else out.value = conv;
    }
    return out;
  }
  const out: JsonObject = {};
  for (const field of type.fieldsArray) {
    const v = obj[field.name];
    if (v === undefined || v === null) continue;
    if (field.map) {
      if (!isObj(v)) continue;
      const m: JsonObject = {};
      let any = false;
      for (const [k, mv] of Object.entries(v)) {
        m[k] = convertValue(field, mv);
        any = true;
      }
      if (any) out[field.name] = m;
    } else if (field.repeated) {
      if (!Array.isArray(v) || v.length === 0) continue;
      out[field.name] = v.map((e) => convertValue(field, e));
    } else {
      // Fields with presence (oneof members, proto3 optional, messages) print even at their default.
      const hasPresence = field.partOf !== null || field.resolvedType instanceof protobuf.Type;
      if (!hasPresence && isDefaultScalar(field, v)) continue;
      out[field.name] = convertValue(field, v);
    }
  }
  return out;
}

function lookupAny(url: string): protobuf.Type | undefined {
  const name = url.slice(url.lastIndexOf('/') + 1);
  try {
    return tetragonTypes().root.lookupType(name);
  } catch {
    return undefined;
  }
}

/** A GetEventsResponse decoded with JSON_DECODE_OPTIONS → its protojson object. */
export function tetragonResponseToJson(decoded: ProtoObject): TetragonJsonEvent {
  return convertMessage(tetragonTypes().GetEventsResponse, decoded) as TetragonJsonEvent;
}

/** Wire bytes of a GetEventsResponse → its protojson object. */
export function decodeTetragonResponseJson(bytes: Uint8Array): TetragonJsonEvent {
  const R = tetragonTypes().GetEventsResponse;
  return tetragonResponseToJson(R.toObject(R.decode(bytes), JSON_DECODE_OPTIONS) as ProtoObject);
}
