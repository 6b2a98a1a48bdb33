"""`python -m n2n.bench`: the training throughput benchmark (n2n/bench/training.py)."""
from n2n.errors import exit_on_error, imports_shielded

with exit_on_error("python -m n2n.bench"), imports_shielded("python -m n2n.bench"):
    from n2n.bench.training import failed, main
with exit_on_error("python -m n2n.bench"):
    raise SystemExit(1 if failed(main()) else 0)
