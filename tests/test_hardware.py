import platform

import torch

from ferlab.hardware import machine_description

CPUINFO = """processor\t: {n}
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480C
flags\t\t: fpu sse avx2 avx512f {extra}

"""


def test_names_the_cpu_model_and_its_matrix_instructions(tmp_path):
    with_amx = tmp_path / "amx"
    with_amx.write_text("".join(CPUINFO.format(n=n, extra="avx512_bf16 avx512_vnni amx_tile") for n in range(2)))
    description = machine_description(with_amx)
    assert description.startswith("Intel(R) Xeon(R) Platinum 8480C (")
    assert "; AMX, AVX-512 bf16, AVX-512 VNNI)" in description
    assert f"{torch.get_num_threads()} threads, PyTorch {torch.__version__}, ONNX Runtime " in description

    without_amx = tmp_path / "plain"
    without_amx.write_text(CPUINFO.format(n=0, extra="avx512_bf16"))
    assert "AVX-512 bf16, no AMX)" in machine_description(without_amx)


def test_falls_back_to_platform_without_cpuinfo(tmp_path):
    description = machine_description(tmp_path / "missing")
    assert platform.machine() in description
    assert "AMX" not in description


def test_names_onnx_runtime_alone_where_pytorch_is_not_installed(tmp_path):
    from .conftest import run_without_training_tools

    description = run_without_training_tools("from ferlab.hardware import machine_description\nprint(machine_description())",
                                             tmp_path)
    assert "ONNX Runtime" in description and "PyTorch" not in description
