"""The machine a figure was measured on, named precisely enough to compare figures.

Classifier speed on two CPUs that both have AVX-512 bf16 differed by 2.5x here: an Intel Xeon
with AMX (bf16 matrix tiles) and an AMD EPYC without (reports/raw/cpu_hosts.txt). So every
speed figure names the CPU model and its matrix instructions, not only `platform.machine()`.
"""

from __future__ import annotations

import platform
from pathlib import Path

# CPU flags that decide how fast bf16/int8 convolutions run, as /proc/cpuinfo spells them.
MATRIX_FLAGS = {"amx_tile": "AMX", "avx512_bf16": "AVX-512 bf16", "avx512_vnni": "AVX-512 VNNI"}


def cpu_model_and_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, set[str]]:
    """The CPU's model name and flags from /proc/cpuinfo (Linux); elsewhere what `platform` knows."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return platform.processor() or platform.machine(), set()
    fields: dict[str, str] = {}
    for line in text.splitlines():  # one block per logical CPU; the first one names them all
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields.get("model name") or platform.machine(), set(fields.get("flags", "").split())


def machine_description(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """For example 'AMD EPYC (x86_64; AVX-512 bf16, AVX-512 VNNI, no AMX), 2 threads, PyTorch 2.13.0+cpu,
    ONNX Runtime 1.32.0': both engines' versions, since the bundled models run on either
    (PyTorch's is left out where it is not installed)."""
    model, flags = cpu_model_and_flags(cpuinfo)
    features = [name for flag, name in MATRIX_FLAGS.items() if flag in flags]
    if flags and "amx_tile" not in flags:
        features.append("no AMX")
    detail = platform.machine() + (f"; {', '.join(features)}" if features else "")
    import onnxruntime

    onnx_runtime = f"ONNX Runtime {onnxruntime.__version__}"
    try:
        import torch
    except ImportError:  # an install without the training extra
        from .parallel import usable_cpus

        return f"{model} ({detail}), {usable_cpus()} threads, {onnx_runtime}"
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{model} ({detail}), {torch.get_num_threads()} threads{gpu}, PyTorch {torch.__version__}, {onnx_runtime}"
