/**
 * Validate-and-standardize stage: untrusted camera frame bytes in, a standardized JPEG or a
 * machine-readable refusal out. Pure domain code: no repository I/O, no Temporal.
 */
export {
  AllowedFormatSchema,
  ContrastConfigSchema,
  OutputConfigSchema,
  ValidateConfigSchema,
  defaultValidateConfig,
  loadValidateConfig,
  parseValidateConfig,
} from './config.js';
export type { AllowedFormat, ValidateConfig, ValidateConfigInput } from './config.js';
export { InvalidReasonSchema, isCameraFault } from './reasons.js';
export type { InvalidReason } from './reasons.js';
export {
  LumaStatsSchema,
  ValidationAcceptedSchema,
  ValidationOutcomeSchema,
  ValidationRejectionSchema,
  ValidationReportSchema,
  ValidationSummarySchema,
  toValidationReport,
} from './schema.js';
export type {
  LumaStats,
  ValidationAccepted,
  ValidationOutcome,
  ValidationRejection,
  ValidationReport,
  ValidationSummary,
} from './schema.js';
export { validateFrame } from './validateFrame.js';
export { classifyLuma, edgeStats, lumaStats, OVERLAY_BAND, OVERLAY_MAX_ROWS } from './luma.js';
export type { EdgeStats } from './luma.js';
export type { LumaVerdict } from './luma.js';
export { scanContainer, sniffFormat } from './container.js';
export type { ContainerScan, SniffedFormat } from './container.js';
