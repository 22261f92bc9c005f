"""Whole-process tests of `sparseft_train`: the command as a real subprocess, a run killed with SIGKILL and resumed, DDP with 2 processes.

Every run is a tiny BERT classifier with MiniLM's vocabulary and tokenizer on a few Rotten Tomatoes reviews, so each takes seconds.
"""
import json, os, signal, subprocess, sys, textwrap, time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sparseft.train import RunDir, TrainConfig, run_id

TINY = dict(model='tiny-bert', model_kwargs={'vocab_size': 30522}, tokenizer='minilm', max_train_examples=96, max_eval_examples=64,
            batch_size=8, max_length=32, lr=5e-3, sparsity=0.5)
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'TOKENIZERS_PARALLELISM': 'false'}
BIN = Path(sys.executable).parent

def _config(tmp_path, name='run.yaml', **kw) -> tuple[TrainConfig, Path]:
    cfg = TrainConfig(**{**TINY, 'results_dir': str(tmp_path/'runs'), **kw})
    return cfg, cfg.save(tmp_path/name)

def _run(args, timeout=300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, env=ENV, timeout=timeout, **kw)

def _train_losses(run_dir):
    return [l['loss'] for l in RunDir(run_dir).read_metrics() if 'eval' not in l]

def test_cli_runs_and_refuses_bad_input(tmp_path):
    cfg, path = _config(tmp_path, max_steps=4, lora={'r': 4, 'sparsity_mode': 'sparse_to_sparse'})
    r = _run([BIN/'sparseft_train', '--config', str(path), '--quiet'])
    assert r.returncode == 0, r.stderr
    run_dir = Path(cfg.results_dir)/run_id(cfg)
    assert r.stdout.startswith(run_id(cfg)) and 'valid for sparse_to_sparse' in r.stdout, r.stdout
    assert (run_dir/'status').read_text() == 'done\n'
    for name in ('config.yaml', 'sparse_config.json', 'train.log', 'metrics.jsonl', 'validation_report.json', 'git_sha.txt',
                 'git_status.txt', 'result.json', 'model_dir/base.safetensors', 'model_dir/adapters.safetensors', 'model_dir/merged/model.safetensors'):
        assert (run_dir/name).is_file(), name
    v = _run([BIN/'sparseft_validate', '--checkpoint', str(run_dir/'model_dir'/'merged'), '--masks', str(run_dir/'model_dir'/'masks.safetensors')])
    assert v.returncode == 0 and v.stdout.startswith('valid for sparse_to_sparse'), (v.stdout, v.stderr)
    for args, needle in ((['--sparsity', '1.5'], 'sparsity must be in [0, 1), got 1.5'), (['--task', 'no-such-task'], "unknown task 'no-such-task'"),
                         (['--model', 'no/such/model'], "model 'no/such/model' is neither a known name")):
        bad = _run([BIN/'sparseft_train', '--config', str(path), '--runs_dir', str(tmp_path/'bad'), *args])
        assert bad.returncode == 2 and bad.stderr.count('\n') == 1 and needle in bad.stderr, (args, bad.stderr)
        assert not (tmp_path/'bad').exists()

KILLED = textwrap.dedent('''
    import sys, time
    from sparseft.train import TrainConfig, train
    def slow_after_checkpoint(line):  # leave the parent time to kill us once the first checkpoint is written
        if line['step'] >= 6: time.sleep(1.0)
    train(TrainConfig.load(sys.argv[1]), progress=False, callback=slow_after_checkpoint)
''')

def test_killed_run_resumes_to_the_same_result(tmp_path):
    lora = {'r': 4, 'sparsity_mode': 'sparse_to_sparse', 'dropout': 0.1}
    cfg, path = _config(tmp_path, max_steps=10, checkpoint_every=3, eval_every=5, lora=lora)
    run_dir = Path(cfg.results_dir)/run_id(cfg)
    latest = run_dir/'model_dir'/'checkpoint'/'latest'
    proc = subprocess.Popen([sys.executable, '-c', KILLED, str(path)], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while not (latest.is_file() and latest.read_text().strip() == 'step-00000006') and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, f'the run ended before it could be killed: {proc.stderr.read()}'
    proc.send_signal(signal.SIGKILL); proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert (run_dir/'status').read_text() == 'running\n'  # killed: nobody could mark it
    assert not (run_dir/'result.json').exists() and not (run_dir/'model_dir'/'merged').exists()

    r = _run([BIN/'sparseft_train', '--config', str(path), '--resume', '--quiet'])
    assert r.returncode == 0, r.stderr
    assert 'resumed from' in (run_dir/'train.log').read_text()
    straight_cfg, straight_path = _config(tmp_path, 'straight.yaml', max_steps=10, checkpoint_every=3, eval_every=5, lora=lora,
                                          results_dir=str(tmp_path/'straight'))
    s = _run([BIN/'sparseft_train', '--config', str(straight_path), '--quiet'])
    assert s.returncode == 0, s.stderr
    straight_dir = Path(straight_cfg.results_dir)/run_id(straight_cfg)
    assert straight_dir.name == run_dir.name  # results_dir is not part of the id

    a, b = (load_file(d/'model_dir'/'adapters.safetensors') for d in (run_dir, straight_dir))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    ra, rb = (json.loads((d/'result.json').read_text())['metrics'] for d in (run_dir, straight_dir))
    for k in ('eval_dense', 'eval_pruned', 'eval_final'): assert ra[k] == pytest.approx(rb[k], rel=1e-6, abs=1e-9), k
    assert _train_losses(run_dir) == pytest.approx(_train_losses(straight_dir), rel=1e-6)
    steps = [l['step'] for l in RunDir(run_dir).read_metrics() if 'eval' not in l]
    assert steps == list(range(1, 11))  # no step logged twice
    assert [l['step'] for l in RunDir(run_dir).read_metrics() if l.get('eval') == 'val'] == [5]

def test_ddp_two_processes_gloo(tmp_path):
    cfg, path = _config(tmp_path, max_steps=5, lora={'r': 4, 'sparsity_mode': 'sparse_to_sparse'}, device='cpu')
    r = _run([BIN/'torchrun', '--standalone', '--nproc_per_node', '2', '--no-python', str(BIN/'sparseft_train'), '--config', str(path), '--quiet'],
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count('\n') == 1 and r.stdout.startswith(run_id(cfg)), r.stdout  # only rank 0 prints
    runs = list((tmp_path/'runs').iterdir())
    assert [p.name for p in runs if not p.name.startswith('.')] == [run_id(cfg)]
    run_dir = runs[0] if not runs[0].name.startswith('.') else runs[1]
    assert (run_dir/'status').read_text() == 'done\n'
    result = json.loads((run_dir/'result.json').read_text())
    assert result['metrics']['world_size'] == 2 and result['validation']['valid']
    log = (run_dir/'train.log').read_text()
    assert log.count(' started (') == 1 and 'rank 0 of 2' in log and 'rank 1' not in log  # rank 1 writes nothing
    assert [l['step'] for l in RunDir(run_dir).read_metrics() if 'eval' not in l] == [1, 2, 3, 4, 5]
    assert result['metrics']['train_samples'] == 5 * 2 * 8  # both processes' batches counted
    assert not list(run_dir.rglob('.tmp*'))

def test_every_offered_model_launches_from_the_panel(tmp_path, monkeypatch):
    "Each model the launch panel offers (every name in fixtures.MODELS), as offered: no tokenizer or vocabulary set, a 2-step run."
    from sparseft.widgets import LaunchPanel
    monkeypatch.setenv('OMP_NUM_THREADS', '1'); monkeypatch.setenv('TOKENIZERS_PARALLELISM', 'false')
    panel = LaunchPanel(results_dir=str(tmp_path), train={'max_train_examples': 16, 'max_eval_examples': 16, 'batch_size': 8, 'max_length': 32})
    panel.max_steps.value = 2
    for model in panel.model.options:
        panel.model.value = model
        panel.button.click()
        assert panel.error is None, (model, panel.error)
    assert [j.name.split('_')[1] for j in panel.launches] == list(panel.model.options)
    for job in panel.launches:
        assert job.wait(timeout=900) == 0, (job.name, job.log_tail(10))
        assert (job.run_dir/'status').read_text() == 'done\n', job.name
    panel.update()
    assert panel.status.value.count('done') == len(panel.launches) and 'failed' not in panel.status.value
