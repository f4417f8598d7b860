/**
 * The OpenAPI 3.1 description of the Vigil ingest API, served at `GET /v1/openapi.json`.
 * Kept as a typed object next to the routes so that a change to one is reviewed with the other.
 */

/** A JSON Schema (2020-12 dialect, as OpenAPI 3.1 uses), loosely typed. */
export interface JsonSchema {
  type?: 'object' | 'string' | 'integer' | 'number' | 'boolean' | 'array' | 'null' | Array<'object' | 'string' | 'integer' | 'number' | 'boolean' | 'array' | 'null'>;
  description?: string;
  format?: string;
  pattern?: string;
  enum?: readonly (string | number | boolean)[];
  const?: string | number | boolean;
  minimum?: number;
  maxLength?: number;
  properties?: Record<string, JsonSchema>;
  required?: readonly string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  oneOf?: readonly JsonSchema[];
  $ref?: string;
  examples?: readonly unknown[];
  contentMediaType?: string;
}

/** An OpenAPI header or parameter. */
export interface OpenApiParameter {
  name: string;
  in: 'header' | 'query' | 'path' | 'cookie';
  required?: boolean;
  description?: string;
  schema: JsonSchema;
  example?: unknown;
}

/** An OpenAPI response. */
export interface OpenApiResponse {
  description: string;
  headers?: Record<string, { description?: string; schema: JsonSchema; required?: boolean }>;
  content?: Record<string, { schema: JsonSchema; example?: unknown }>;
}

/** An OpenAPI operation. */
export interface OpenApiOperation {
  operationId: string;
  summary: string;
  description?: string;
  tags?: string[];
  security?: Array<Record<string, string[]>>;
  parameters?: OpenApiParameter[];
  requestBody?: { required: boolean; description?: string; content: Record<string, { schema: JsonSchema }> };
  responses: Record<string, OpenApiResponse | { $ref: string }>;
}

/** An OpenAPI 3.1 document (the subset Vigil uses). */
export interface OpenApiDocument {
  openapi: '3.1.0';
  info: { title: string; version: string; description?: string; license?: { name: string; identifier?: string } } & Record<`x-${string}`, unknown>;
  jsonSchemaDialect?: string;
  servers?: Array<{ url: string; description?: string }>;
  paths: Record<string, Partial<Record<'get' | 'post' | 'put' | 'delete' | 'patch', OpenApiOperation>>>;
  components: {
    schemas: Record<string, JsonSchema>;
    responses: Record<string, OpenApiResponse>;
    securitySchemes: Record<string, { type: 'http'; scheme: 'bearer'; description?: string } | { type: 'apiKey'; in: 'header'; name: string; description?: string }>;
  };
  security?: Array<Record<string, string[]>>;
}

const errorResponse = (description: string, example: { code: string; message: string }): OpenApiResponse => ({
  description,
  content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' }, example: { error: example } } },
});

const deviceAuth: Array<Record<string, string[]>> = [{ bearerAuth: [] }, { deviceKey: [] }];

/** The OpenAPI document of the ingest API. */
export const OPENAPI: OpenApiDocument = {
  openapi: '3.1.0',
  jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
  info: {
    title: 'Vigil ingest API',
    version: '1.0.0',
    description:
      'Security cameras (or their gateways) upload frames here. Each accepted frame is stored once in the ' +
      'content-addressed object store and committed to the versioned `frames` repo, then batched for validation ' +
      'and detection. Every error answer has the same shape: `{"error":{"code","message"}}`. On any path, an ' +
      'unknown path is 404 `E_NOT_FOUND` and a method the path does not serve is 405 `E_METHOD_NOT_ALLOWED` (with `Allow`).',
    license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
  },
  paths: {
    '/v1/frames': {
      post: {
        operationId: 'uploadFrame',
        summary: 'Upload one camera frame',
        description:
          'The body is the raw image (JPEG, PNG or WebP), not multipart. The key is checked before the body is read: ' +
          'a request without a valid key is answered 401 at once, and the connection is closed when body bytes are still unread. A declared ' +
          '`Content-Length` over the limit is answered 413 the same way; a chunked body is counted while it streams ' +
          'and cut off with 413 as soon as it passes the limit.\n\n' +
          'The image type is decided by the bytes, not the label: `Content-Type` must name one of the accepted image ' +
          'types, but a PNG labelled `image/jpeg` is accepted and stored as `image/png`. Bytes that are not a JPEG, ' +
          'PNG or WebP image are refused with 415 whatever the label.\n\n' +
          'Uploading is idempotent: the same bytes for the same device and capture time answer 202 with ' +
          '`duplicate: true` and store nothing new; different bytes for the same device and capture time answer 409.',
        tags: ['frames'],
        security: deviceAuth,
        parameters: [
          {
            name: 'Authorization',
            in: 'header',
            required: false,
            description: '`Bearer <device key>`. Either this or `X-Device-Key` is required, once: a request with two such headers is refused (401).',
            schema: { type: 'string', pattern: '^Bearer vk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$' },
          },
          {
            name: 'X-Device-Key',
            in: 'header',
            required: false,
            description: 'The device key, for clients that cannot set `Authorization`. Ignored when `Authorization` is present.',
            schema: { type: 'string', pattern: '^vk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$' },
          },
          {
            name: 'Content-Type',
            in: 'header',
            required: true,
            description: 'One of the accepted image types (parameters such as `; charset` are ignored). Anything else is answered 415.',
            schema: { type: 'string', enum: ['image/jpeg', 'image/png', 'image/webp'] },
          },
          {
            name: 'Content-Length',
            in: 'header',
            required: false,
            description: 'Size of the body in bytes; over the server limit (`info.x-vigil-max-frame-bytes`) is answered 413 before the body is read. Omit it only for a chunked body.',
            schema: { type: 'integer', minimum: 1 },
          },
          {
            name: 'X-Capture-Time',
            in: 'header',
            required: true,
            description:
              'When the frame was captured: an ISO-8601 instant with a zone designator (`Z` or `±hh:mm`), or epoch milliseconds. ' +
              'A local time without offset is refused (ambiguous around DST changes), and so is a time more than 5 minutes in the future ' +
              'or outside the years 2000 to 2200 (UTC). Any earlier time in that range is accepted as given (a backlog a camera uploads late; ' +
              'a camera whose clock reset shows up on that day, so keep cameras on NTP). Precision is the millisecond: finer digits are dropped.',
            schema: { oneOf: [{ type: 'string', format: 'date-time' }, { type: 'string', pattern: '^\\d{10,13}$' }] },
            example: '2026-11-27T22:42:33.120Z',
          },
          {
            name: 'X-Time-Zone',
            in: 'header',
            required: false,
            description: "IANA time zone of the camera (e.g. `Europe/Paris`), recorded in the frame tag. Defaults to the zone the device was registered with.",
            schema: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_+\\-/]{0,63}$' },
            example: 'Europe/Paris',
          },
        ],
        requestBody: {
          required: true,
          description: 'The raw image bytes.',
          content: {
            'image/jpeg': { schema: { type: 'string', contentMediaType: 'image/jpeg' } },
            'image/png': { schema: { type: 'string', contentMediaType: 'image/png' } },
            'image/webp': { schema: { type: 'string', contentMediaType: 'image/webp' } },
          },
        },
        responses: {
          '202': {
            description: 'Accepted: the frame is durably stored and committed (or was already).',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/AcceptedFrame' } } },
          },
          '400': errorResponse('Bad or missing `X-Capture-Time`, bad `X-Time-Zone`, or an empty body.', { code: 'E_BAD_INPUT', message: 'capture time "yesterday" is not an ISO-8601 instant with a zone (e.g. 2026-11-27T22:42:33.120Z) or epoch milliseconds' }),
          '401': { $ref: '#/components/responses/Unauthorized' },
          '409': errorResponse('This device already sent a different frame with the same capture time.', { code: 'E_CONFLICT', message: 'device alice/cam1 already sent a different frame with capture time 2026-11-27T22:42:33.120Z' }),
          '413': errorResponse('The body is larger than the server limit.', { code: 'E_TOO_LARGE', message: 'the frame is larger than 15728640 bytes' }),
          '408': errorResponse('The request (headers or body) did not arrive in time (a slow or stalled upload); the connection is closed.', { code: 'E_TIMEOUT', message: 'the request was not received in time' }),
          '415': errorResponse('`Content-Type` is not an accepted image type, or the bytes are not a JPEG, PNG or WebP image.', { code: 'E_UNSUPPORTED', message: 'the frame is not a JPEG, PNG or WebP image' }),
          '417': errorResponse('An `Expect` header other than `100-continue`; the connection is closed.', { code: 'E_BAD_INPUT', message: 'unsupported Expect header "200-ok": only 100-continue is supported' }),
          '431': errorResponse('The request headers are too large (over 16 KiB).', { code: 'E_TOO_LARGE', message: 'the request headers are too large' }),
          '500': { $ref: '#/components/responses/Internal' },
          '503': { $ref: '#/components/responses/Unavailable' },
        },
      },
    },
    '/v1/devices/me': {
      get: {
        operationId: 'whoAmI',
        summary: 'The device a key belongs to',
        description: 'Lets a camera or gateway check its key. Never returns the key or its hash.',
        tags: ['devices'],
        security: deviceAuth,
        parameters: [
          { name: 'Authorization', in: 'header', required: false, description: '`Bearer <device key>`', schema: { type: 'string' } },
          { name: 'X-Device-Key', in: 'header', required: false, description: 'The device key (alternative to `Authorization`).', schema: { type: 'string' } },
        ],
        responses: {
          '200': { description: 'The device.', content: { 'application/json': { schema: { $ref: '#/components/schemas/DeviceInfo' } } } },
          '401': { $ref: '#/components/responses/Unauthorized' },
          '500': { $ref: '#/components/responses/Internal' },
        },
      },
    },
    '/v1/health': {
      get: {
        operationId: 'health',
        summary: 'Liveness and dependency status',
        description: 'No authentication. `ok: false` and 503, with one line per problem in `problems`, when the worker is not running, a batch has waited 30 s or more to start (Temporal unreachable or not answering: accepted frames are safe and wait), the frames journal cannot checkpoint, or a pipeline activity has failed 5 tries in a row and is still retried (`stuckActivities`: its batch is held).',
        tags: ['meta'],
        security: [],
        responses: {
          '200': { description: 'Healthy.', content: { 'application/json': { schema: { $ref: '#/components/schemas/Health' } } } },
          '503': { description: 'A dependency is down.', content: { 'application/json': { schema: { oneOf: [{ $ref: '#/components/schemas/Health' }, { $ref: '#/components/schemas/Error' }] } } } },
        },
      },
    },
    '/v1/openapi.json': {
      get: {
        operationId: 'openapi',
        summary: 'This document',
        tags: ['meta'],
        security: [],
        responses: { '200': { description: 'The OpenAPI 3.1 document.', content: { 'application/json': { schema: { type: 'object' } } } } },
      },
    },
  },
  components: {
    schemas: {
      Error: {
        type: 'object',
        description: 'Every error answer.',
        required: ['error'],
        additionalProperties: false,
        properties: {
          error: {
            type: 'object',
            required: ['code', 'message'],
            additionalProperties: false,
            properties: {
              code: {
                type: 'string',
                description: 'Stable machine-readable code.',
                enum: ['E_BAD_INPUT', 'E_BAD_ID', 'E_UNAUTHORIZED', 'E_NOT_FOUND', 'E_METHOD_NOT_ALLOWED', 'E_CONFLICT', 'E_TOO_LARGE', 'E_UNSUPPORTED', 'E_TIMEOUT', 'E_STORAGE', 'E_UNAVAILABLE', 'E_LOCKED', 'E_INTERNAL'],
              },
              message: { type: 'string', description: 'One line, for humans.' },
            },
          },
        },
      },
      AcceptedFrame: {
        type: 'object',
        required: ['frameId', 'tag', 'path', 'duplicate'],
        additionalProperties: false,
        properties: {
          frameId: { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'SHA-256 of the image bytes.' },
          tag: { type: 'string', description: '`<user>-<device>-<YYYYMMDDTHHmmssSSSZ>-<time zone with / replaced by .>`', examples: ['alice-cam1-20261127T224233120Z-Europe.Paris'] },
          path: { type: 'string', description: 'Path of the frame document in the `frames` repo (and of its results in every stage repo).', examples: ['alice-cam1/20261127T224233120Z.json'] },
          duplicate: { type: 'boolean', description: 'True when this exact frame was already stored.' },
        },
      },
      DeviceInfo: {
        type: 'object',
        required: ['user', 'device', 'site', 'tz', 'keyId', 'createdAt'],
        additionalProperties: false,
        properties: {
          user: { type: 'string', pattern: '^[a-z0-9][a-z0-9_]{0,62}$' },
          device: { type: 'string', pattern: '^[a-z0-9][a-z0-9_]{0,62}$' },
          site: { type: 'string', pattern: '^[a-z0-9][a-z0-9_]{0,62}$' },
          tz: { type: 'string', description: 'IANA time zone the device was registered with.' },
          keyId: { type: 'string', pattern: '^[0-9a-f]{12}$', description: 'Public part of the key (the secret is never returned).' },
          createdAt: { type: 'string', format: 'date-time' },
        },
      },
      Health: {
        type: 'object',
        required: ['ok'],
        additionalProperties: true,
        properties: { ok: { type: 'boolean' }, problems: { type: 'array', items: { type: 'string' } } },
      },
    },
    responses: {
      Unauthorized: errorResponse('Missing, unknown or revoked device key. Nothing was read or stored; the connection is closed when body bytes were still unread.', { code: 'E_UNAUTHORIZED', message: 'a valid device key is required (Authorization: Bearer <key> or X-Device-Key)' }),
      Internal: errorResponse('Unexpected server error (details are logged server-side only).', { code: 'E_INTERNAL', message: 'internal error' }),
      Unavailable: {
        description: 'Storage is failing or busy; retry later.',
        headers: { 'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer' } } },
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' }, example: { error: { code: 'E_STORAGE', message: 'could not store object …: ENOSPC' } } } },
      },
    },
    securitySchemes: {
      bearerAuth: { type: 'http', scheme: 'bearer', description: 'Device key from `vigil device add`, as `Authorization: Bearer vk_…`.' },
      deviceKey: { type: 'apiKey', in: 'header', name: 'X-Device-Key', description: 'The same device key in a header of its own.' },
    },
  },
};
