"""Every setting with a fixed set of values, declared once: the code that acts on a setting and
the checks that refuse a wrong value before any work starts both read them from here."""

# How a file of faces is read (auto: told by the file itself); data.format may also be synthetic, the
# faces the package draws (no file).
FILE_FORMATS = ("auto", "kaggle_csv", "homework_csv", "image_folder", "packed")
SYNTHETIC = "synthetic"
DATA_FORMATS = (SYNTHETIC, *FILE_FORMATS)
ON_BAD_ROWS = ("raise", "skip")
# How python -m fer_lightning.pack stores the faces (data/readers/packed.py).
PACK_ENCODINGS = ("rowdiff", "webp")
SAMPLERS = (None, "none", "balanced")
MIXING_MODES = ("mixup", "cutmix")
# The networks of the model group (models/architectures.py maps each name to its class).
ARCHITECTURES = ("report_cnn", "resnet", "separable")
# Stages that still leave a map of at least 1x1 from a 48x48 face: resnet halves from the second
# stage on (48 -> 24 -> 12 -> 6 -> 3 -> 2 -> 1), separable from the first.
MAX_STAGES = {"resnet": 7, "separable": 6}
SCHEDULER_INTERVALS = ("step", "epoch")
# trainer.memory_format: NCHW (PyTorch's default) or NHWC (runs/memory_format.py).
MEMORY_FORMATS = ("contiguous", "channels_last")
PRECISIONS = ("32-true", "32", "16-mixed", "bf16-mixed", "bf16-true", "16-true", "64-true")
# Sizes beyond any real use, refused before they allocate: a conv or hidden layer's width (the wide
# network's largest is 768), and images in a batch.
MAX_WIDTH = 4096
MAX_BATCH = 65536
# The seeds numpy (and so Lightning's seed_everything) accepts.
SEED_RANGE = (0, 2**32 - 1)

# Inference commands (evaluate, predict, export).
TTA_CHOICES = ("none", "flip", "ten_crop")
# What an attribution map shows (explain/attribution.py computes each with Captum).
ATTRIBUTION_METHODS = ("saliency", "integrated_gradients", "gradcam")
# test: the held-out split; val: the split runs and test-time augmentation are chosen on.
EVAL_SPLITS = ("test", "val")
# Face detectors of predict, the API and the demo (inference/faces.py): YuNet through OpenCV (the default:
# the first), OpenCV's Haar cascade, dlib's HOG and dlib's MMOD CNN.
FACE_DETECTORS = ("yunet", "haar", "hog", "cnn")
# detect_faces: null means auto.
DETECT_FACES = (True, False, "auto")
# What predict writes for photos: a table of faces, or the same as JSON.
PREDICT_OUTPUT_SUFFIXES = (".csv", ".json")
# Each export format with the file names it writes: the first is its default, and a name of one
# format is refused for another.
EXPORT_SUFFIXES = {"onnx": (".onnx",), "torchscript": (".torchscript.pt", ".pt", ".pth", ".ts", ".zip")}
EXPORT_FORMATS = tuple(EXPORT_SUFFIXES)
# Opsets torch 2.13's TorchScript-based ONNX exporter writes and onnxruntime runs for these networks
# (below 7 it writes graphs onnxruntime refuses; above 23 it refuses itself).
ONNX_OPSETS = range(7, 24)
# What runs a model at inference (inference/onnx_backend.py for onnxruntime), and the number format of
# its weights there: int8 graphs ship only for the models where they keep the accuracy.
INFERENCE_BACKENDS = ("torch", "onnxruntime")
ONNX_PRECISIONS = ("fp32", "int8")
# threads=auto: one thread for a small batch, every core for a large one (inference/threads.py).
THREAD_POLICIES = ("auto",)


def allowed(values: tuple) -> str:
    """``a, b or c`` (``null`` for None), for one-line error messages."""
    names = ["null" if value is None else str(value) for value in values if value != "none"]
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
