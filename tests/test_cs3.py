"""Whole-process tests of the cs3 backend: `sparseft_train` as a real subprocess with the cs3 flags (dry run, several num_csx values,
a stand-in for ModelZoo's `cszoo`), and, where cerebras.pytorch is importable (the environment of tools/cs3_env.sh), a cstorch run
interrupted and resumed to the same result.

The `cszoo` used here is a stand-in (a shell script put first on PATH), not ModelZoo: it only shows how arguments are passed and how a
failing launcher is recorded. Every run is a tiny Llama with MiniLM's tokenizer on a few Rotten Tomatoes reviews.
"""
import json, os, subprocess, sys, textwrap
from pathlib import Path

import pytest
import yaml

from sparseft.cs3 import cstorch_available, read_checkpoint_masks, same_masks
from sparseft.mask_ops import load_mask
from sparseft.train import RunDir, TrainConfig, run_id, train

TINY = dict(model='tiny-llama', model_kwargs={'vocab_size': 30522}, tokenizer='minilm', sparsity=0.5, max_train_examples=48,
            max_eval_examples=16, batch_size=8, max_length=32, lr=5e-3, lora={'r': 4})
ENV = {**os.environ, 'OMP_NUM_THREADS': '1', 'TOKENIZERS_PARALLELISM': 'false'}
BIN = Path(sys.executable).parent

STANDIN = textwrap.dedent('''\
    #!/bin/sh
    # stand-in for ModelZoo's cszoo (not ModelZoo): records its arguments, fails when STANDIN_FAIL is set
    echo "$@" >> "$(dirname "$0")/calls.txt"
    if [ -n "$STANDIN_FAIL" ]; then echo "ValueError: no CS-3 system free" >&2; exit 4; fi
    echo "stand-in cszoo: done"
''')

def _run(args, env=ENV, timeout=300):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, timeout=timeout)

def test_cli_cs3_dry_run_standin_and_failure(tmp_path):
    cfg = TrainConfig(**TINY, max_steps=4, results_dir=str(tmp_path/'runs'))
    path = cfg.save(tmp_path/'run.yaml')
    r = _run([BIN/'sparseft_train', '--config', path, '--backend', 'cs3', '--launcher', 'cszoo', '--num_csx', '1', '2', '--mount_dirs', '/data', '/code',
              '--python_paths', '/code', '--dry_run', '--quiet'])
    assert r.returncode == 0, r.stderr
    runs = sorted((tmp_path/'runs').iterdir())
    assert len(runs) == 2 and r.stdout.count('dry run, nothing launched') == 2
    for run in runs:
        assert RunDir(run).status == 'pending'
        params = yaml.safe_load((run/'params.yaml').read_text())
        cc = params['trainer']['init']['backend']['cluster_config']
        assert cc['mount_dirs'] == ['/data', '/code'] and cc['python_paths'] == ['/code']
        assert f"--num_csx {cc['num_csx']}" in (run/'command.sh').read_text()
    assert sorted(yaml.safe_load((p/'params.yaml').read_text())['trainer']['init']['backend']['cluster_config']['num_csx'] for p in runs) == [1, 2]

    bindir = tmp_path/'bin'; bindir.mkdir()
    (bindir/'cszoo').write_text(STANDIN); (bindir/'cszoo').chmod(0o755)
    (tmp_path/'base.yaml').write_text('trainer:\n  init:\n    model: {name: llama}\n')
    env = {**ENV, 'PATH': f"{bindir}{os.pathsep}{ENV['PATH']}"}
    args = [BIN/'sparseft_train', '--config', path, '--backend', 'cs3', '--launcher', 'cszoo', '--num_csx', '2', '--base_yaml', tmp_path/'base.yaml', '--quiet']
    ok = _run(args, env=env)
    assert ok.returncode == 0, ok.stderr
    real = TrainConfig(**{**cfg.to_dict(), 'backend': 'cs3', 'backend_options': {'launcher': 'cszoo', 'num_csx': 2, 'base_yaml': str(tmp_path/'base.yaml')}})
    run = tmp_path/'runs'/run_id(real)
    assert RunDir(run).status == 'done' and 'stand-in cszoo: done' in (run/'train.log').read_text()
    call = (bindir/'calls.txt').read_text().split()
    assert call[:2] == ['fit', str((run/'params.yaml').resolve())] and call[2:4] == ['--num_csx', '2'] and call[-2] == '-o'
    bad = _run(args + ['--force'], env={**env, 'STANDIN_FAIL': '1'})
    assert bad.returncode == 1 and 'launcher cszoo failed with exit status 4: ValueError: no CS-3 system free' in bad.stderr, bad.stderr
    assert RunDir(run).status == 'failed'
    failure = json.loads((run/'failure.json').read_text())
    assert failure['exit_status'] == 4 and failure['reason'] == 'ValueError: no CS-3 system free'
    missing = _run([BIN/'sparseft_train', '--config', path, '--backend', 'cs3', '--launcher', 'cszoo', '--base_yaml', tmp_path/'nope.yaml'], env=env)
    assert missing.returncode == 2 and 'nope.yaml: no such file' in missing.stderr

class StopAt(Exception): pass

@pytest.mark.skipif(not cstorch_available(), reason='needs cerebras.pytorch: run in the environment of tools/cs3_env.sh')
def test_cstorch_run_killed_and_resumed(tmp_path):
    common = dict(**TINY, max_steps=6, checkpoint_every=2, backend='cs3', backend_options={'launcher': 'cstorch'})
    straight = train(TrainConfig(**common, results_dir=str(tmp_path/'a')), progress=False)
    cfg = TrainConfig(**common, results_dir=str(tmp_path/'b'))
    def stop(line):
        if line['step'] == 3: raise StopAt()
    with pytest.raises(StopAt): train(cfg, progress=False, callback=stop)
    run = RunDir(Path(cfg.results_dir)/run_id(cfg))
    assert run.status == 'failed' and (run/'model_dir'/'checkpoint'/'latest').is_file()
    resumed = train(cfg, resume=True, progress=False)
    assert run.status == 'done' and 'resumed from' in (run/'train.log').read_text()
    losses = lambda d: [l['loss'] for l in RunDir(d).read_metrics() if 'eval' not in l]
    assert losses(run.path) == pytest.approx(losses(straight.run_dir), abs=1e-4)
    assert resumed.metrics['eval_final'] == pytest.approx(straight.metrics['eval_final'], abs=1e-4)
    masks = load_mask(run/'model_dir'/'masks.safetensors')[0]
    assert same_masks(read_checkpoint_masks(run/'model_dir'/'cstorch.mdl'), masks)
    assert resumed.validation['valid'] and resumed.metrics['merged_violations'] == 0
