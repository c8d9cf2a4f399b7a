"""Encode every text config's sentences once into the on-disk cache, timing each (cold when the cache is empty).

Usage: python benchmarks/warm_cache.py   (cache: /tmp/taskmix-cache; the text benchmarks then run warm)
"""
import time, sys, os
os.environ["HF_HUB_OFFLINE"]="1"
from taskmix.config import load_config
from taskmix.data import load_run_tasks
for c in ["configs/glue/rte_qnli.yaml","configs/glue/mrpc_mnli.yaml","configs/glue/mrpc_qnli.yaml","configs/xnli/sw.yaml","configs/glue/rte_mnli.yaml"]:
    t=time.perf_counter()
    cfg=load_config(c,["encoder.cache_dir=/tmp/taskmix-cache"])
    tasks=load_run_tasks(cfg)
    print(c, [(t.name,t.n_train,t.dim) for t in tasks], round(time.perf_counter()-t,1), flush=True)
