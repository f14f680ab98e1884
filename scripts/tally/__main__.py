import sys

from tally.cli import main

if __name__ == "__main__":  # a spawned child process imports this module: it must not run the command again
    sys.exit(main())
