"""The benchmarks' `--preset tiny` paths, run as a user runs them: each prints its table (no timing is asserted)."""
import json, subprocess, sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]

def run(*args, timeout=600):
    r = subprocess.run([sys.executable, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{args} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r.stdout

def test_pipeline_tiny(tmp_path):
    out = run(ROOT/'bench'/'pipeline.py', '--preset', 'tiny', '--json', tmp_path/'p.json')
    for stage in ('scores', 'masks', 'wrap', 'train', 'merge', 'validate', 'save', 'total*'): assert f'\n{stage} ' in out, out
    assert 'sparseft: last loss' in out and 'violations after merge 0,' in out, out  # sparse_to_sparse keeps the masks
    assert (tmp_path/'p.json').exists()

def test_pipeline_one_side(tmp_path):
    "One side alone prints its own stages; a side that fails (here: workers on a device nothing can be built on) is named, keeps its error in the JSON, and the run exits non-zero."
    out = run(ROOT/'bench'/'pipeline.py', '--preset', 'tiny', '--sides', 'sparseft')
    assert 'sparseft:\nstage' in out and '\nsave ' in out and 'violations after merge 0,' in out, out
    r = subprocess.run([sys.executable, ROOT/'bench'/'pipeline.py', '--device', 'meta', '--json', tmp_path/'p.json'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 1 and 'failed: sparseft, peer' in r.stderr and '  peer: FAILED, exit status 1' in r.stdout, (r.stdout, r.stderr[-2000:])
    errors = json.loads((tmp_path/'p.json').read_text())
    assert set(errors) == {'sparseft', 'peer'} and all('META device' in e['error'] for e in errors.values()), errors

def test_masks_tiny():
    out = run(ROOT/'bench'/'masks.py', '--preset', 'tiny')
    assert 'cat_kthvalue' in out and 'identical' in out, out

def test_masks_layer_tiny():
    "Per-layer masks: ours against `prune.l1_unstructured` on each layer, the same masks, exactly k pruned."
    out = run(ROOT/'bench'/'masks.py', '--preset', 'tiny', '--scope', 'layer')
    assert 'per-layer magnitude masks' in out and 'l1_unstructured' in out and 'identical' in out and 'speed-up vs l1_unstructured' in out, out
    assert 'False' not in out, out  # pruned == k for both

def test_masks_row_tiny():
    "Per-row masks: ours against the Wanda reference code's stable sort of each row, the same masks, exactly k pruned."
    out = run(ROOT/'bench'/'masks.py', '--preset', 'tiny', '--scope', 'row')
    assert 'per-row magnitude masks' in out and 'row_sort' in out and 'identical' in out and 'speed-up vs the per-row sort' in out, out
    assert 'False' not in out, out  # pruned == k for both

def test_masks_device_path_tiny():
    "The GPU's code path on the CPU (`--methods ... device_path`): the same masks as ours in every scope, exactly k pruned."
    for scope in ('global', 'layer', 'row'):
        out = run(ROOT/'bench'/'masks.py', '--preset', 'tiny', '--scope', scope, '--methods', 'sparseft,device_path', '--repeat', '1')
        row = next(l for l in out.splitlines() if l.startswith('device_path '))
        assert row.endswith('True  identical'), out
    r = subprocess.run([sys.executable, ROOT/'bench'/'masks.py', '--device', 'cuda', '--methods', 'device_path'], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode != 0 and ('unknown method' in r.stderr or 'no CUDA device' in r.stderr), r.stderr

def test_masks_peer_killed(tmp_path, capsys):
    "A peer the OS kills (the OOM killer's SIGKILL: cat + kthvalue at 1.6B on a 24 GB machine) is a row of the table, not the end of it."
    sys.path.insert(0, str(ROOT/'bench'))
    import masks as bench_masks
    ours = bench_masks.worker('sparseft', 'tiny', 'cpu', 0.5, tmp_path, 1, 'fp32')
    peer = bench_masks.failed_row('cat_kthvalue', -9, 'Traceback...\n\n')
    assert peer['error'] == 'not possible at this size: killed by signal 9 (out of memory: the kernel killed it): Traceback...', peer
    assert bench_masks.failed_row('global_unstructured', 1, '')['error'] == 'not possible at this size: exit status 1'
    bench_masks.report({'sparseft': ours, 'cat_kthvalue': peer}, tmp_path, 'tiny', 'cpu', 0.5)
    out = capsys.readouterr().out
    assert '\nsparseft ' in out and 'cat_kthvalue' in out and 'killed by signal 9' in out and 'goal < 5%' in out, out
    bench_masks.report({'cat_kthvalue': peer}, tmp_path, 'tiny', 'cpu', 0.5)  # nothing measured: the errors alone
    assert capsys.readouterr().out.strip() == f"cat_kthvalue: {peer['error']}"

def test_lora_step_tiny():
    out = run(ROOT/'bench'/'lora_step.py', '--preset', 'tiny', '--rounds', '1')
    assert 'sparse_to_sparse' in out and 'x PEFT' in out, out

def test_lora_step_compile_tiny():
    "`--compile BACKEND`: every variant under torch.compile, one untimed step compiling first; here `aot_eager` (traces as inductor does, runs torch's kernels: seconds, no C compiler)."
    out = run(ROOT/'bench'/'lora_step.py', '--preset', 'tiny', '--rounds', '1', '--steps', '1', '--compile', 'aot_eager', '--variants', 'peft,sparse_to_sparse')
    assert 'torch.compile (aot_eager)' in out, out
    rows = [line.split() for line in out.splitlines() if line.startswith(('peft ', 'sparse_to_sparse '))]
    assert [r[0] for r in rows] == ['peft', 'sparse_to_sparse'] and rows[0][10] == rows[1][10], out  # the same first loss

def test_semi_structured_tiny():
    out = run(ROOT/'bench'/'semi_structured.py', '--preset', 'tiny', '--repeats', '2')
    for part in ('(a) GEMM', '(b) merged model', '(c) one training step'): assert part in out, out
    assert '2:4 / dense: prefill' in out and 'sparse_to_sparse / PEFT' in out and 'fallback: on cpu' in out, out

def test_semi_structured_emulated():
    "The 2:4 paths of the benchmark itself, on `fixtures.emulated_24_kernels` (torch's 2:4 tensors on the CPU; no speed is measured)."
    out = run(ROOT/'bench'/'semi_structured.py', '--preset', 'tiny', '--repeats', '1', '--emulate')
    assert 'faster: cutlass (emulated on the CPU' in out and '14 Linears semi-structured (cutlass), 0 fallback' in out, out
    assert '14 of 14 on the 2:4 kernels (cutlass)' in out and "kernels='auto' (each shape timed at 2048 tokens)" in out, out
    assert "14 of 14 on the 2:4 kernels (cutlass), 14 with their backward's g W_f too" in out, out  # transposable masks
    losses = {line.split('first loss ')[1][:6] for line in out.splitlines() if 'first loss' in line and 'transposable' not in line}
    assert len(losses) == 1, out  # PEFT, the dense kernels and the 2:4 kernels start from the same pruned model (the transposable one has its own masks)

def test_gpu_check_script():
    "`bench/gpu_check.sh` runs on a device this suite never sees: every benchmark option it passes must exist, and a bad part is refused."
    import re
    script = (ROOT/'bench'/'gpu_check.sh').read_text()
    assert subprocess.run(['bash', '-n', ROOT/'bench'/'gpu_check.sh']).returncode == 0
    r = subprocess.run(['bash', ROOT/'bench'/'gpu_check.sh', '3'], capture_output=True, text=True)
    assert r.returncode == 2 and 'usage' in r.stderr, r
    helps, steps = {}, re.findall(r'^\s*step \S+\s+\d+ "\$PY" (bench/\S+\.py)(.*)$', script, re.M)
    assert len(steps) >= 10, steps
    for bench, args in steps:
        if bench not in helps: helps[bench] = run(ROOT/bench, '--help')
        for opt in re.findall(r'(--[a-z_]+)', args): assert opt in helps[bench], (bench, opt)
        for name, val in re.findall(r'--(preset|methods|profile) (\S+)', args):
            for v in val.split(','): assert v in helps[bench] or name == 'methods', (bench, name, v)
    nbs = re.search(r"NBS='\^\(([^)]*)\)", script).group(1).split('|')
    for nb in nbs: assert '#| gpu' in (ROOT/'nbs'/f'{nb}.ipynb').read_text(), nb  # each notebook it tests has a gpu cell
    wheels = (ROOT/'bench'/'gpu_wheels.sh').read_text()
    for pkg in ('nbdev==', 'execnb==', 'fastcore=='): assert pkg in wheels  # what the notebook step imports on the device

def test_lora_step_profile_tiny():
    "`--profile`: torch.profiler's table, then the step's phases and sparse LoRA's own ranges (where the 27% over PEFT goes, on a GPU)."
    out = run(ROOT/'bench'/'lora_step.py', '--preset', 'tiny', '--profile', 'sparse_to_sparse')
    for r in ('step.forward', 'step.backward', 'step.optimizer', 'sparse_lora.forward.fold', 'sparse_lora.backward.masked_grad', 'sparse_lora.backward.project'):
        assert r in out, out
