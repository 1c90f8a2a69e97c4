import sys

from civiq.cli import main

sys.exit(main())
