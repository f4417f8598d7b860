/**
 * Class names of the 80-class COCO detection set, in the order YOLO models index them
 * (class id 0 = person, 1 = bicycle, ...). Matches the `names` metadata of Ultralytics' yolov8n.onnx.
 */
export const COCO80_LABELS = [
  'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat', 'traffic light',
  'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
  'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag', 'tie', 'suitcase', 'frisbee',
  'skis', 'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard', 'surfboard',
  'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple',
  'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch',
  'potted plant', 'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard',
  'cell phone', 'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase',
  'scissors', 'teddy bear', 'hair drier', 'toothbrush',
] as const;

/** One COCO class name. */
export type Coco80Label = (typeof COCO80_LABELS)[number];

/** Named label sets a model config may refer to instead of listing its labels. */
export const LABEL_SETS = { coco80: COCO80_LABELS } as const;

/** Name of a built-in label set (e.g. `coco80`). */
export type LabelSetName = keyof typeof LABEL_SETS;
