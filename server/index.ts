/** The ingest HTTP API: routes, hardening and its OpenAPI document. */
export { createApiServer, statusForCode, ACCEPTED_MEDIA_TYPES, type ApiServerDeps, type ApiErrorCode } from './app.js';
export { OPENAPI, type OpenApiDocument, type OpenApiOperation, type OpenApiParameter, type OpenApiResponse, type JsonSchema } from './openapi.js';
