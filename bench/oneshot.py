"""Benchmark: time and peak memory of one-shot pruning, whole-model Wanda vs block-by-block Wanda and SparseGPT.

    python bench/oneshot.py --preset tiny             # a smoke test of the whole script in seconds
    python bench/oneshot.py --preset 1b               # a 1B-shaped Llama (random weights): hidden 2048, 16 layers, MLP 5632; ~10 min on 2 cores
    python bench/oneshot.py --preset 1b --device cuda # the same on a GPU (model on the GPU)
    PYTHONPATH=. VENV/bin/python bench/oneshot.py --peer llmcompressor   # masks vs llmcompressor's, in a venv that has it

llmcompressor 0.14 pins transformers<=5.17, so it lives in its own venv (one that sees this project's packages through a
.pth file and installs `llmcompressor` on top): `--peer llmcompressor` prunes a 4-block Llama (hidden 256) with
sparseft and with llmcompressor's `SparseGPTModifier` / `WandaPruningModifier` (`oneshot`, one sequence per batch)
and prints the fraction of equal mask entries per block, next to sparseft against itself with the same tokens batched
differently (8 sequences per batch): float rounding alone, which SparseGPT's weight updates amplify from block to block.

Every method prunes the same seeded Llama (built from a config, random weights) to 50% unstructured from the same
random calibration tokens (`--n-samples` x `--seq-len`), each in its own subprocess:

- `wanda`: `compute_importance(model, 'wanda')` (one forward of the whole model with hooks) then `compute_masks(..., scope='row')`;
- `wanda-seq`: `compute_sequential_wanda_masks` (block by block, each block on the pruned blocks' outputs);
- `sparsegpt`: `compute_sparsegpt_masks` (block by block, Hessians, OBS updates of the weights).

Time is the wall time of the mask computation (the model and batches exist first). Peak extra memory is the growth of
the process's resident set over its level once the model is built (VmHWM reset through /proc/self/clear_refs, else a
1 ms sampling thread) on CPU, the growth of `torch.cuda.max_memory_allocated` on GPU. The masks themselves (one bool
byte per prunable weight) are part of every method's peak; the table also shows what each method holds besides them
by construction: whole-model Wanda all scores at once (fp32), the block-by-block methods one block's scores or
Hessians and the calibration hidden states (inputs and outputs of one block).
"""
from __future__ import annotations

import argparse, json, subprocess, sys, time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import build_llama, peak_meter

PRESETS = {  # LlamaConfig fields (untied embeddings), and the calibration set
    'tiny': dict(shape=dict(hidden_size=128, intermediate_size=352, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                            vocab_size=1000), n_samples=8, seq_len=64),
    '1b': dict(shape=dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=16, num_attention_heads=32, num_key_value_heads=4,
                          vocab_size=32000), n_samples=16, seq_len=128),
}
METHODS = ('wanda', 'wanda-seq', 'sparsegpt')
SPARSITY = 0.5

def calibration(preset: str, n_samples: int, seq_len: int, batch_size: int = 8, seed: int = 0) -> list[dict]:
    "Random token batches (uniform over the vocabulary), the same for every method."
    g = torch.Generator().manual_seed(seed)
    vocab = PRESETS[preset]['shape']['vocab_size']
    return [{'input_ids': torch.randint(0, vocab, (min(batch_size, n_samples - i), seq_len), generator=g)} for i in range(0, n_samples, batch_size)]

def run(method: str, model, batches, device: str):
    "One method's masks (the model is changed only by sparsegpt)."
    from sparseft.importance import compute_importance
    from sparseft.mask_generator import compute_masks
    from sparseft.oneshot import compute_sequential_wanda_masks, compute_sparsegpt_masks
    if method == 'wanda': return compute_masks(compute_importance(model, 'wanda', batches, progress=False), SPARSITY, scope='row')
    if method == 'wanda-seq': return compute_sequential_wanda_masks(model, SPARSITY, batches, progress=False, device=device)
    return compute_sparsegpt_masks(model, SPARSITY, batches, progress=False, device=device)

def held_by_construction(method: str, model, n_tokens: int) -> int:
    "Bytes a method holds besides the masks, by construction: all fp32 scores, or one block's statistics and the hidden states."
    from sparseft.core import prunable_params
    params = prunable_params(model)
    if method == 'wanda': return 4 * sum(p.numel() for p in params.values())
    block = {n: p for n, p in params.items() if '.layers.0.' in n}
    hidden = 2 * n_tokens * model.config.hidden_size * 4  # inputs and outputs of one block, fp32
    if method == 'wanda-seq': return hidden + 4 * sum(p.numel() for p in block.values())
    shared = ('k_proj.weight', 'v_proj.weight', 'up_proj.weight')  # they share q_proj's / gate_proj's Hessian
    return hidden + 4 * sum(p.shape[1] ** 2 for n, p in block.items() if not n.endswith(shared))

def child(args) -> dict:
    "Run one method in this process and return its measurements."
    if args.threads: torch.set_num_threads(args.threads)
    p = PRESETS[args.preset]
    n_samples, seq_len = args.n_samples or p['n_samples'], args.seq_len or p['seq_len']
    model = build_llama(p['shape'], args.device, torch.float32, seed=0, max_position_embeddings=max(256, seq_len)).eval()
    batches = calibration(args.preset, n_samples, seq_len)
    with peak_meter(args.device) as meter:
        t0 = time.perf_counter()
        masks = run(args.run, model, batches, args.device)
        if args.device.startswith('cuda'): torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
    mask_bytes = sum(m.numel() for m in masks.values())
    pruned = sum(int((~m).sum()) for m in masks.values())
    return {'method': args.run, 'seconds': seconds, 'peak_bytes': meter.extra, 'mask_bytes': mask_bytes,
            'held_bytes': held_by_construction(args.run, model, n_samples * seq_len), 'sparsity': pruned / mask_bytes,
            'params': sum(q.numel() for q in model.parameters()), 'tokens': n_samples * seq_len}

def peer_llmcompressor(n_samples: int = 16, seq_len: int = 32) -> None:
    "Masks of sparseft vs llmcompressor's SparseGPT and Wanda modifiers on a tiny Llama, per block; sparseft against itself for scale."
    import copy, tempfile, warnings
    warnings.filterwarnings('ignore')
    from datasets import Dataset
    from llmcompressor import oneshot
    from llmcompressor.modifiers.pruning import SparseGPTModifier, WandaPruningModifier
    from loguru import logger
    from sparseft.core import prunable_params
    from sparseft.fixtures import load_smollm2, tiny_llama
    from sparseft.oneshot import compute_sequential_wanda_masks, compute_sparsegpt_masks
    logger.remove()
    tok = load_smollm2()[1]  # llmcompressor wants a processor; the batches are tokenised already
    ids = torch.randint(0, 256, (n_samples, seq_len), generator=torch.Generator().manual_seed(0))
    ones, eights = [{'input_ids': ids[i:i + 1]} for i in range(n_samples)], [{'input_ids': ids[i:i + 8]} for i in range(0, n_samples, 8)]
    ds = Dataset.from_dict({'input_ids': ids.tolist(), 'attention_mask': torch.ones_like(ids).tolist()})
    folder = tempfile.mkdtemp()
    def theirs(modifier, model):
        oneshot(model=model, processor=tok, dataset=ds, recipe=modifier, num_calibration_samples=n_samples, max_seq_length=seq_len,
                shuffle_calibration_samples=False, output_dir=None)
        return {n: p.detach() != 0 for n, p in prunable_params(model).items()}
    def per_block(a, b): return [round(sum(int((a[n] == b[n]).sum()) for n in a if f'.layers.{i}.' in n) /
                                       sum(a[n].numel() for n in a if f'.layers.{i}.' in n), 4) for i in range(4)]
    print(f"fraction of equal mask entries per block (0..3), 4-block Llama, {n_samples} x {seq_len} random tokens")
    for label, structure, kw in (('50%', '0:0', dict(sparsity=0.5)), ('2:4', '2:4', dict(sparsity=None, pattern='nm'))):
        base = tiny_llama(num_layers=4, hidden_size=256, intermediate_size=512)
        base.save_pretrained(folder); tok.save_pretrained(folder); base.config._name_or_path = folder  # llmcompressor reloads the config
        common = dict(mask_structure=structure, targets=['Linear'], ignore=['lm_head'])
        ours = compute_sparsegpt_masks(copy.deepcopy(base), dataloader=ones, progress=False, **kw)
        again = compute_sparsegpt_masks(copy.deepcopy(base), dataloader=eights, progress=False, **kw)
        sg = theirs(SparseGPTModifier(sparsity=0.5, block_size=128, dampening_frac=0.01, **common), copy.deepcopy(base))
        scope = 'row' if structure == '0:0' else 'layer'
        wo = compute_sequential_wanda_masks(copy.deepcopy(base), dataloader=ones, scope=scope, progress=False, **kw)
        wa = compute_sequential_wanda_masks(copy.deepcopy(base), dataloader=eights, scope=scope, progress=False, **kw)
        wt = theirs(WandaPruningModifier(sparsity=0.5, **common), copy.deepcopy(base))
        print(f"  {label} sparsegpt: vs llmcompressor {per_block(ours, sg)}, vs itself rebatched {per_block(ours, again)}")
        print(f"  {label} wanda (sequential): vs llmcompressor {per_block(wo, wt)}, vs itself rebatched {per_block(wo, wa)}")

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--preset', choices=list(PRESETS), default='tiny')
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--methods', nargs='+', choices=METHODS, default=list(METHODS))
    ap.add_argument('--n-samples', type=int, default=None, help='calibration sequences (default: the preset\'s)')
    ap.add_argument('--seq-len', type=int, default=None, help='tokens per calibration sequence (default: the preset\'s)')
    ap.add_argument('--threads', type=int, default=None, help='torch threads (default: torch\'s)')
    ap.add_argument('--peer', choices=['llmcompressor'], help='compare masks with a peer instead of timing (see the docstring)')
    ap.add_argument('--run', choices=METHODS, help=argparse.SUPPRESS)  # internal: run one method in this process
    args = ap.parse_args()
    if args.peer:
        peer_llmcompressor(); return
    if args.run:
        print(json.dumps(child(args))); return
    rows = []
    for method in args.methods:
        cmd = [sys.executable, __file__, '--preset', args.preset, '--device', args.device, '--run', method]
        for flag, v in (('--n-samples', args.n_samples), ('--seq-len', args.seq_len), ('--threads', args.threads)):
            if v is not None: cmd += [flag, str(v)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode: sys.exit(f"{method} failed:\n{r.stderr[-3000:]}")
        rows.append(json.loads(r.stdout.strip().splitlines()[-1]))
        print(f"{method}: {rows[-1]['seconds']:.1f} s", file=sys.stderr, flush=True)
    base = next((r for r in rows if r['method'] == 'wanda'), rows[0])
    mb = lambda b: f"{b / 2**20:,.1f}"
    print(f"preset {args.preset} ({rows[0]['params'] / 1e6:,.0f}M parameters), {rows[0]['tokens']} calibration tokens, "
          f"device {args.device}, sparsity {SPARSITY}")
    head = f"{'method':<10} {'time s':>8} {'x ' + base['method']:>9} {'peak MiB':>9} {'x ' + base['method']:>9} {'masks MiB':>10} {'held MiB':>9} {'sparsity':>8}"
    print(head); print('-' * len(head))
    for r in rows:
        print(f"{r['method']:<10} {r['seconds']:>8.1f} {r['seconds'] / base['seconds']:>9.2f} {mb(r['peak_bytes']):>9} "
              f"{r['peak_bytes'] / max(base['peak_bytes'], 1):>9.2f} {mb(r['mask_bytes']):>10} {mb(r['held_bytes']):>9} {r['sparsity']:>8.4f}")
    print("peak: growth of the process's memory during the mask computation; held: what the method keeps besides the masks by "
          "construction (all fp32 scores; or one block's scores / Hessians plus its hidden states in and out)")

if __name__ == '__main__':
    main()
