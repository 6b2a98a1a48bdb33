"""`python -m n2n.bench`: the training throughput benchmark (n2n/bench/training.py)."""
from n2n.errors import exit_on_error

with exit_on_error("python -m n2n.bench"):
    from n2n.bench.training import failed, main

    raise SystemExit(1 if failed(main()) else 0)
