import sys

from emobot.cli import main

sys.exit(main())
