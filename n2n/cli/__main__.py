"""`python -m n2n.cli` runs the `n2n` command without installing it."""
import sys

from n2n.cli import main

sys.exit(main())
