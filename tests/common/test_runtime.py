"""--amp picks the precision per device: bf16 only where the CPU computes it natively, fp32 (with the reason) where it
would be emulated; the trainer's autocast and scaler follow."""
import pytest
import torch

from common import errors, runtime
from common.runtime import amp_context, make_scaler

CPU = torch.device('cpu')


@pytest.fixture
def flags(monkeypatch):
    def set_flags(*names, mkldnn=True):
        monkeypatch.setattr(runtime, 'cpu_flags', lambda: frozenset(names))
        monkeypatch.setattr(torch.ops.mkldnn, '_is_mkldnn_bf16_supported', lambda: mkldnn)
    return set_flags


@pytest.mark.parametrize('cpu,expected', [
    (('avx2', 'fma'), None),                                   # AVX2-only EPYC: emulated bf16, 18x slower
    (('avx2', 'avx512f', 'avx512bw', 'avx512_vnni'), None),    # AVX-512 without BF16: emulated, 2x slower
    (('avx2', 'avx512f', 'avx512_bf16'), torch.bfloat16),      # Cooper Lake and later
    (('avx2', 'avx512f', 'amx_bf16', 'amx_tile'), torch.bfloat16),  # Sapphire Rapids (AMX)
    (('asimd', 'bf16'), torch.bfloat16),                       # Arm with the BF16 extension
])
def test_cpu_bf16_only_where_native(flags, cpu, expected):
    flags(*cpu)
    dtype, why = runtime.amp_choice(CPU)
    assert dtype == expected
    assert ('fp32' in why) == (expected is None)
    assert runtime.precision_name(True, CPU) == ('bf16' if expected else 'fp32')
    assert runtime.precision_name(False, CPU) == 'fp32'


def test_mkldnn_without_bf16_kernels_means_fp32(flags):
    flags('avx512_bf16', mkldnn=False)
    assert runtime.amp_dtype(CPU) is None


def test_trainer_autocast_and_scaler_follow_the_choice(flags):
    x = torch.randn(4, 4)
    flags('avx2')
    with amp_context(True, CPU):
        assert (x @ x).dtype == torch.float32
    assert not make_scaler(True, CPU).is_enabled()
    flags('avx512_bf16')
    with amp_context(True, CPU):
        assert (x @ x).dtype == torch.bfloat16
    assert not make_scaler(True, CPU).is_enabled()   # bf16 needs no scaler
    with amp_context(False, CPU):
        assert (x @ x).dtype == torch.float32


def test_machine_line_names_the_features():
    line = runtime.machine_line()
    assert 'native bf16' in line and 'threads' in line


@pytest.mark.parametrize('exc, code, line', [
    (OSError(28, 'No space left on device', '/out/snapshot_3.pth.tar'), 1,
     'error: No space left on device: /out/snapshot_3.pth.tar'),
    (PermissionError(13, 'Permission denied', '/ro/exp'), 1, 'error: Permission denied: /ro/exp'),
    (KeyboardInterrupt(), 130, 'interrupted'),
    # a tool that knows where it was says so on the same line, with the interrupt's own exit code
    (KeyboardInterrupt('during stage teacher_s0; run the same command again'), 130,
     'interrupted during stage teacher_s0; run the same command again'),
    (errors.Terminated('during stage data'), 143, 'terminated (SIGTERM) during stage data'),
])
def test_entry_points_end_os_errors_and_interrupts_in_one_line(exc, code, line, capsys):
    from common.errors import run_cli

    def main():
        raise exc
    with pytest.raises(SystemExit) as e:
        run_cli(main)
    assert e.value.code == code and capsys.readouterr().err == line + '\n'


def test_sigterm_is_raised_like_ctrl_c_so_clean_up_runs(capsys):
    import os
    import signal
    from common.errors import run_cli
    cleaned = []

    def main():
        try:
            os.kill(os.getpid(), signal.SIGTERM)   # the handler raises at the next bytecode
            cleaned.append('not reached')
        finally:
            cleaned.append(True)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        with pytest.raises(SystemExit) as e:
            run_cli(main)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert e.value.code == 143 and cleaned == [True] and capsys.readouterr().err == 'terminated (SIGTERM)\n'
