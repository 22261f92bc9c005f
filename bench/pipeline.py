"""Benchmark: the whole pipeline on one device, sparseft vs the peers a user would otherwise wire together.

    python bench/pipeline.py --preset tiny              # CPU smoke test of every stage, seconds (what CI runs)
    python bench/pipeline.py --device cuda              # LLaMA-7B shapes in bf16 (random weights from a config), one GPU
    python bench/pipeline.py --device cuda --preset 1b  # a 1B-shaped Llama, for a quicker look

Stages, each timed (wall, with the device synchronised) and measured for peak memory (growth of
`torch.cuda.max_memory_allocated` over the stage on CUDA, of the resident set on CPU):

| stage | sparseft | peer |
|---|---|---|
| scores | `score_wanda` over the calibration batches | the Wanda paper's scoring written out: input-norm hooks on every Linear, |W| * ||X|| |
| masks | `compute_masks(scores, 0.5, 'unstructured', 'row')` | per-row `torch.sort` of the scores, lowest half pruned (the paper's code) |
| wrap | `apply_sparse_lora(..., sparse_to_sparse)` | `apply_masks` then `peft.get_peft_model(LoraConfig(...))` |
| train | `--steps` AdamW steps on random tokens | the same with PEFT's LoRA |
| merge | `merge_and_unload` (in place, checked for NaN/inf first) | PEFT's `merge_and_unload` |
| validate | `validate_sparsity_preserved` | counting nonzero weights where the mask prunes |
| save | `save_merged` (safetensors + masks) | `save_pretrained` |

Each side runs in its own subprocess on the same seeded model (built on the meta device and materialised, no
download) and the same calibration tokens. The peer's merge of a dense LoRA update into a pruned base brings pruned
weights back; its validate line shows how many. Goals (issue 13): every stage at most the peer's time and memory;
the whole pipeline without training under 60 s on an H200 at 7B, fitting in 80 GB.
llm-compressor's `WandaPruningModifier` is not used as the peer: it pins other torch/transformers releases than
sparseft's environment, so the paper's scoring is written out here instead.
"""
from __future__ import annotations

import argparse, json, subprocess, sys, tempfile, time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import build_llama, exit_reason, peak_meter

PRESETS = {  # LlamaConfig fields (untied embeddings) and the workload
    'tiny': dict(shape=dict(hidden_size=128, intermediate_size=352, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4, vocab_size=1000),
                 calib=(8, 32), calib_batch=4, train=(2, 32)),
    'cpu200m': dict(shape=dict(hidden_size=1024, intermediate_size=2816, num_hidden_layers=12, num_attention_heads=16, num_key_value_heads=16, vocab_size=32000),
                    calib=(16, 128), calib_batch=4, train=(2, 128)),
    '1b': dict(shape=dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4, vocab_size=32000),
               calib=(64, 512), calib_batch=8, train=(4, 512)),
    '7b': dict(shape=dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32, vocab_size=32000),
               calib=(64, 512), calib_batch=8, train=(4, 512)),
}
PROJECTIONS = ('q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj')
STAGES = ('scores', 'masks', 'wrap', 'train', 'merge', 'validate', 'save')
SIDES = ('sparseft', 'peer')

class Stages:
    "Time and peak memory of each stage of one side's pipeline."
    def __init__(self, device: str):
        self.device, self.rows = device, {}
        self.sync = torch.cuda.synchronize if device.startswith('cuda') else (lambda: None)
    def __call__(self, name: str, fn):
        self.sync()
        with peak_meter(self.device) as mem:
            t0 = time.perf_counter(); out = fn(); self.sync(); dt = time.perf_counter() - t0
        self.rows[name] = {'s': dt, 'peak': mem.extra}
        return out

def calibration(preset: dict, device: str) -> list[dict]:
    "The calibration batches: `calib` = (sequences, tokens) of seeded random ids, `calib_batch` sequences a batch."
    n, t = preset['calib']
    ids = torch.randint(0, preset['shape']['vocab_size'], (n, t), generator=torch.Generator().manual_seed(1))
    return [{'input_ids': ids[i:i + preset['calib_batch']].to(device)} for i in range(0, n, preset['calib_batch'])]

def train_steps(model, preset: dict, device: str, steps: int) -> float:
    "`steps` AdamW steps on seeded random tokens; the last loss."
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    b, t = preset['train']
    g = torch.Generator().manual_seed(2)
    model.train()
    loss = None
    for _ in range(steps):
        ids = torch.randint(0, preset['shape']['vocab_size'], (b, t), generator=g).to(device)
        with torch.autocast(device_type='cuda', dtype=torch.bfloat16, enabled=device.startswith('cuda')):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward(); opt.step(); opt.zero_grad(set_to_none=True)
    del opt
    return float(loss.detach()) if loss is not None else float('nan')

# -- the two sides --------------------------------------------------------------------------------------------

def run_sparseft(model, preset, device, steps, out_dir, st: Stages) -> dict:
    from sparseft.core import prunable_params
    from sparseft.importance import score_wanda
    from sparseft.mask_generator import compute_masks
    from sparseft.sparse_lora import SparseLoRAConfig, apply_sparse_lora, merge_and_unload, save_merged, validate_sparsity_preserved
    batches = calibration(preset, device)
    params = {n: p for n, p in prunable_params(model).items() if n.split('.')[-2] in PROJECTIONS}
    scores = st('scores', lambda: score_wanda(model, params, batches, progress=False))
    masks = st('masks', lambda: compute_masks(scores, 0.5, 'unstructured', 'row'))
    del scores
    cfg = SparseLoRAConfig(r=16, alpha=32, target_modules=list(PROJECTIONS), modules_to_save=None, sparsity_mode='sparse_to_sparse')
    model = st('wrap', lambda: apply_sparse_lora(model, masks, cfg))
    loss = st('train', lambda: train_steps(model, preset, device, steps))
    model = st('merge', lambda: merge_and_unload(model))
    ok, report = st('validate', lambda: validate_sparsity_preserved(model, masks))
    st('save', lambda: save_merged(model, out_dir, masks=masks))
    return {'loss': loss, 'violations': report['global']['total_violations'], 'valid': ok}

def peer_wanda_scores(model, batches) -> dict[str, torch.Tensor]:
    "The Wanda paper's scoring: squared input norms per column from hooks on each Linear, then |W| * sqrt(norms)."
    linears = {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n.split('.')[-1] in PROJECTIONS}
    norms = {n: torch.zeros(m.in_features, device=m.weight.device, dtype=torch.float32) for n, m in linears.items()}
    counts = dict.fromkeys(linears, 0)
    def hook(name):
        def f(mod, inp, out):
            x = inp[0].detach().reshape(-1, inp[0].shape[-1]).float()
            k = x.shape[0]
            norms[name].mul_(counts[name] / (counts[name] + k)).add_(x.pow(2).sum(0) / (counts[name] + k))
            counts[name] += k
        return f
    hs = [m.register_forward_hook(hook(n)) for n, m in linears.items()]
    try:
        with torch.no_grad():
            for b in batches: model(**b)
    finally:
        for h in hs: h.remove()
    return {f'{n}.weight': m.weight.detach().abs().float() * norms[n].sqrt() for n, m in linears.items()}

def peer_row_masks(scores: dict[str, torch.Tensor], sparsity: float) -> dict[str, torch.Tensor]:
    "The Wanda code's per-output-row selection: sort each row, prune the lowest `sparsity` fraction."
    masks = {}
    for n, s in scores.items():
        idx = torch.sort(s, dim=-1, stable=True)[1][:, :int(s.shape[1] * sparsity)]
        masks[n] = torch.ones_like(s, dtype=torch.bool).scatter_(1, idx, False)
    return masks

def run_peer(model, preset, device, steps, out_dir, st: Stages) -> dict:
    from peft import LoraConfig, get_peft_model
    from sparseft.mask_ops import apply_masks
    batches = calibration(preset, device)
    scores = st('scores', lambda: peer_wanda_scores(model, batches))
    masks = st('masks', lambda: peer_row_masks(scores, 0.5))
    del scores
    def wrap():
        apply_masks(model, masks)
        return get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=list(PROJECTIONS)),
                              autocast_adapter_dtype=False)
    pm = st('wrap', wrap)
    loss = st('train', lambda: train_steps(pm, preset, device, steps))
    merged = st('merge', lambda: pm.merge_and_unload())
    def count():
        weights = dict(merged.named_parameters())
        return sum(int((weights[n][~m] != 0).sum()) for n, m in masks.items())
    violations = st('validate', count)
    st('save', lambda: merged.save_pretrained(out_dir))
    return {'loss': loss, 'violations': violations, 'valid': violations == 0}

def worker(side: str, preset_name: str, device: str, steps: int) -> dict:
    preset = PRESETS[preset_name]
    dtype = torch.bfloat16 if device.startswith('cuda') else torch.float32
    import peft, transformers, sparseft.sparse_lora  # noqa: F401  imported before measuring
    from transformers.utils import logging as hf_logging
    hf_logging.set_verbosity_error()
    model = build_llama(preset['shape'], device, dtype, 0, max_position_embeddings=4096, use_cache=False).eval()
    st = Stages(device)
    with tempfile.TemporaryDirectory() as d:
        res = (run_sparseft if side == 'sparseft' else run_peer)(model, preset, device, steps, Path(d)/'merged', st)
        size = sum(f.stat().st_size for f in (Path(d)/'merged').rglob('*') if f.is_file())
    return {'side': side, 'stages': st.rows, 'saved_bytes': size, **res}

# -- the driver ----------------------------------------------------------------------------------------------------

def report(rows: dict, steps: int, device: str):
    ours, peer = rows['sparseft'], rows['peer']
    mem = 'alloc' if device.startswith('cuda') else 'RSS'
    print(f"{'stage':<10}{'sparseft (s)':>13}{'peer (s)':>10}{'x peer':>8}{f'sparseft peak {mem} (MiB)':>27}{f'peer (MiB)':>12}{'x peer':>8}  goal (<= 1x time and memory)")
    ratio = lambda a, b: a / b if b > 0 else float('nan')
    for s in STAGES:
        a, b = ours['stages'][s], peer['stages'][s]
        tr, mr = ratio(a['s'], b['s']), ratio(a['peak'], b['peak'])
        verdict = 'met' if tr <= 1 and (mr <= 1 or a['peak'] <= 2**20) else 'NOT met'
        print(f"{s:<10}{a['s']:>13.3f}{b['s']:>10.3f}{tr:>8.2f}{a['peak'] / 2**20:>27.1f}{b['peak'] / 2**20:>12.1f}{mr:>8.2f}  {verdict}")
    total = lambda r: sum(v['s'] for k, v in r['stages'].items() if k != 'train')
    print(f"{'total*':<10}{total(ours):>13.3f}{total(peer):>10.3f}{ratio(total(ours), total(peer)):>8.2f}   (* without the {steps} training steps; goal at 7B on an H200: < 60 s)")
    for r in (ours, peer):
        print(f"{r['side']}: last loss {r['loss']:.4f}, violations after merge {r['violations']:,}, saved {r['saved_bytes'] / 2**20:.1f} MiB")

def report_side(r: dict, device: str):
    "One side's stages alone: what a run with --sides, or one whose other side failed, still has to show."
    mem = 'alloc' if device.startswith('cuda') else 'RSS'
    print(f"{r['side']}:\n{'stage':<10}{'time (s)':>10}{f'peak {mem} (MiB)':>18}")
    for s in STAGES:
        if s in r['stages']: print(f"{s:<10}{r['stages'][s]['s']:>10.3f}{r['stages'][s]['peak'] / 2**20:>18.1f}")
    print(f"{'total*':<10}{sum(v['s'] for k, v in r['stages'].items() if k != 'train'):>10.3f}   (* without the training steps)")
    print(f"last loss {r['loss']:.4f}, violations after merge {r['violations']:,}, saved {r['saved_bytes'] / 2**20:.1f} MiB")

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--device', default='cpu', help="'cpu' or 'cuda'")
    ap.add_argument('--preset', default=None, choices=list(PRESETS), help='model shapes and workload (default: tiny on CPU, 7b on CUDA)')
    ap.add_argument('--steps', type=int, default=None, help='training steps (default 20; 3 with the tiny preset)')
    ap.add_argument('--sides', default=','.join(SIDES), help=f"comma-separated, of {', '.join(SIDES)}")
    ap.add_argument('--json', default=None, help='also write the results to this JSON file')
    ap.add_argument('--worker', default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    cuda = a.device.startswith('cuda')
    preset = a.preset or ('7b' if cuda else 'tiny')
    steps = a.steps if a.steps is not None else (3 if preset == 'tiny' else 20)
    if a.worker:
        print(json.dumps(worker(a.worker, preset, a.device, steps))); return
    if cuda and not torch.cuda.is_available(): sys.exit('--device cuda: no CUDA device is available here')
    sides = a.sides.split(',')
    for s in sides:
        if s not in SIDES: sys.exit(f"unknown side {s!r}; known: {', '.join(SIDES)}")
    p = PRESETS[preset]
    print(f"pipeline: preset {preset} on {a.device} ({'bf16' if cuda else 'fp32'}), Wanda from {p['calib'][0]} x {p['calib'][1]} calibration tokens, "
          f"50% row masks, r=16 adapters on 7 projections, {steps} steps at {p['train'][0]} x {p['train'][1]}", flush=True)
    rows, failed = {}, {}
    for s in sides:  # a side that fails (out of memory at 7B, say) does not lose the other side's figures
        t0 = time.time()
        res = subprocess.run([sys.executable, __file__, '--worker', s, '--device', a.device, '--preset', preset, '--steps', str(steps)],
                             capture_output=True, text=True)
        if res.returncode:
            failed[s] = f'{exit_reason(res.returncode)} after {time.time() - t0:.1f} s:\n{res.stderr[-3000:]}'
            print(f"  {s}: FAILED, {failed[s]}", flush=True); continue
        rows[s] = json.loads(res.stdout.strip().splitlines()[-1])
        print(f"  {s}: {time.time() - t0:.1f} s in its process", flush=True)
    if a.json: Path(a.json).write_text(json.dumps({**rows, **{s: {'side': s, 'error': e} for s, e in failed.items()}}, indent=1))
    if set(rows) == set(SIDES): report(rows, steps, a.device)
    for r in rows.values():
        if set(rows) != set(SIDES): report_side(r, a.device)
    if failed: sys.exit(f"failed: {', '.join(failed)}")

if __name__ == '__main__':
    main()
