import sys

from tally.cli import main

# Run when executed (python -m tally), not when imported: a multiprocessing spawn child imports the main module
# again (as __mp_main__).
if __name__ == "__main__":
    sys.exit(main())
