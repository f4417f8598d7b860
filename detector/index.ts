/**
 * Public API of the detector: load a verified ONNX model and detect objects in images.
 *
 * ```ts
 * import { Detector } from '../detector/index.js';
 * const detector = await Detector.load('models/yolov8n.json');
 * const result = await detector.detect(bytes); // DetectionResult
 * await detector.release();
 * ```
 */
export { Detector, DetectorOptionsSchema, type DetectorOptions, type DetectorModelInfo } from './detector.js';
export { DetectorPool, type ImageDetector } from './pool.js';
export { ThreadedDetector } from './threaded.js';
export {
  BoxSchema,
  DetectedObjectSchema,
  DetectionResultSchema,
  DetectionTimingsSchema,
  type Box,
  type DetectedObject,
  type DetectionResult,
  type DetectionTimings,
} from './schema.js';
export {
  ModelConfigSchema,
  loadModelConfig,
  parseModelConfig,
  readVerifiedModel,
  sha256OfFile,
  verifyModelFile,
  type ModelConfig,
  type ResolvedModelConfig,
} from './modelConfig.js';
export { COCO80_LABELS, LABEL_SETS, type Coco80Label, type LabelSetName } from './labels.js';
export { letterbox, letterboxGeometry, PAD_VALUE, type LetterboxResult, type LetterboxTransform } from './letterbox.js';
export { decodeYolov8, unletterboxBox, yolov8Candidates, type BoxTransform, type DecodeOptions } from './decode.js';
export { iou, nms, nmsPerClass, type CornerBox, type ScoredBox } from './nms.js';
